# A cluster of mixed Erlang/OTP releases around one C++ node: an Elixir node
# of this machine (OTP 25 / Elixir 1.14 on Debian 12, like the test VM) and an
# Elixir node of the Debian 13 root built by scripts/otp27-root (OTP 27 /
# Elixir 1.18) both talk to the same C++ moebi, and the C++ client reaches
# both. Needs IT_OTP27_ELIXIR and IT_OTP27_PEER_EBIN (set by CMake).
defmodule ChatIT.T14MixedOtpTest do
  use ExUnit.Case, async: false
  import ChatIT

  setup_all do
    moebi = start_cpp(moebi())
    old = start_elixir(unique("host_otp"))
    new = start_elixir(unique("otp27_"), runtime: :otp27)
    %{moebi: moebi, old: old, new: new}
  end

  # Runs Chat.send_message(to, msg) on `peer` and returns {result, text}: what
  # it returned there, and what that node's chat processes printed meanwhile
  # (capture_chat_output/1, done on the remote node in its own Elixir).
  defp remote_send(peer, to, msg) do
    code = """
    {:ok, buffer} = StringIO.open("")

    swapped =
      for name <- [Chat.TaskSupervisor, Chat], pid = Process.whereis(name), pid != nil do
        {:group_leader, old} = Process.info(pid, :group_leader)
        Process.group_leader(pid, buffer)
        {pid, old}
      end

    try do
      result = Chat.send_message(#{inspect(to)}, #{inspect(msg)})
      {_input, text} = StringIO.contents(buffer)
      {result, text}
    after
      Enum.each(swapped, fn {pid, old} -> Process.group_leader(pid, old) end)
      StringIO.close(buffer)
    end
    """

    case :rpc.call(peer.name, Code, :eval_string, [code], 20_000) do
      {{result, text}, _binding} -> {result, text}
      other -> flunk("remote Chat.send_message on #{peer.name} failed: #{inspect(other)}")
    end
  end

  defp otp_release(peer), do: :rpc.call(peer.name, System, :otp_release, [], 10_000)

  test "the two Elixir nodes really run different OTP releases", %{old: old, new: new} do
    assert otp_release(old) == System.otp_release()
    new_release = otp_release(new)
    assert is_binary(new_release), inspect(new_release)
    assert String.to_integer(new_release) >= 27, "the OTP 27 peer runs OTP #{new_release}"
    assert new_release != System.otp_release()
    # ... and they talk to each other directly as well.
    assert :rpc.call(old.name, Node, :ping, [new.name], 10_000) == :pong
  end

  test "both call the C++ moebi with Chat.send_message: nil, and chicken? printed on each",
       %{moebi: moebi, old: old, new: new} do
    for peer <- [old, new] do
      msg = "from #{peer.label} on OTP #{otp_release(peer)} (#{System.unique_integer([:positive])})"
      {result, text} = remote_send(peer, moebi.name, msg)
      assert result == nil, "#{peer.label}: Chat.send_message returned #{inspect(result)}"
      assert String.split(text, "\n", trim: true) == ["chicken?"], "#{peer.label} printed #{inspect(text)}"
      assert_prints(moebi, msg)
      assert count(moebi, msg) == 1
    end
  end

  test "both call the C++ moebi at the same time", %{moebi: moebi, old: old, new: new} do
    tag = System.unique_integer([:positive])

    results =
      [old, new]
      |> Enum.map(fn peer ->
        msg = "concurrent #{tag} from #{peer.label}"
        {msg, Task.async(fn -> remote_send(peer, moebi.name, msg) end)}
      end)
      |> Enum.map(fn {msg, task} -> {msg, Task.await(task, 30_000)} end)

    for {msg, {result, text}} <- results do
      assert result == nil
      assert String.split(text, "\n", trim: true) == ["chicken?"], "#{msg}: printed #{inspect(text)}"
      assert_prints(moebi, msg)
    end
  end

  test "chat-node send reaches both (exit 0, printed once on each)", %{old: old, new: new} do
    for peer <- [old, new] do
      msg = "C++ client to #{peer.label} #{System.unique_integer([:positive])}"
      r = cli_send(peer.name, msg)
      assert r.status == 0, "chat-node send to #{peer.label} failed: #{inspect(r)}"
      refute "chicken?" in r.stdout
      assert_prints(peer, msg)
      barrier(peer)
      assert count(peer, msg) == 1
    end
  end

  test "chat-node ping answers pong for both", %{old: old, new: new} do
    for peer <- [old, new] do
      r = cli_ping(peer.name)
      assert {r.status, r.stdout} == {0, ["pong"]}, "#{peer.label}: #{inspect(r)}"
    end
  end
end
