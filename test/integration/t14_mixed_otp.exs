# A cluster of mixed Erlang/OTP releases around one C++ node: an Elixir node
# of this machine (OTP 25 / Elixir 1.14 on Debian 12, like the test VM) and
# one Elixir node of each root built by scripts/otp-root (OTP 27 / Elixir 1.18
# from Debian 13, OTP 29 / Elixir 1.20 from Debian sid) all talk to the same
# C++ moebi, and the C++ client reaches all of them. IT_MIXED_RUNTIMES lists
# the roots' runtimes ("otp27 otp29"); each needs IT_OTPnn_ELIXIR and
# IT_OTPnn_PEER_EBIN (CMake sets them all).
defmodule ChatIT.T14MixedOtpTest do
  use ExUnit.Case, async: false
  import ChatIT

  setup_all do
    runtimes =
      System.get_env("IT_MIXED_RUNTIMES", "")
      |> String.split()
      |> Enum.map(&String.to_atom/1)

    assert runtimes != [], "IT_MIXED_RUNTIMES names no other runtime (set by CMake)"
    moebi = start_cpp(moebi())
    host = start_elixir(unique("host_otp"))

    # OTP connects releases at most two apart; further apart, BEAM nodes break
    # each other: OTP 29's pg sends {discover, Pid, 1}, which crashes OTP 25's
    # pg (measured), and with it the Chat app that supervises it. So a release
    # too far from this host's runs with -connect_all false: global does not
    # mesh it with the host's node, yet it meets the C++ moebi and every node
    # within its window.
    host_rel = String.to_integer(System.otp_release())

    others =
      for runtime <- runtimes do
        opts =
          [runtime: runtime] ++
            if(too_far?(host_rel, release_of(runtime)), do: [erl: "-connect_all false"], else: [])

        {runtime, start_elixir(unique("#{runtime}_"), opts)}
      end

    # {peer, the OTP release it must run}
    peers = [{host, System.otp_release()} | for({rt, p} <- others, do: {p, release_of(rt)})]
    %{moebi: moebi, peers: peers, nodes: Enum.map(peers, &elem(&1, 0))}
  end

  defp release_of(runtime), do: String.replace_prefix(Atom.to_string(runtime), "otp", "")

  defp too_far?(a, b), do: abs(to_int(a) - to_int(b)) > 2
  defp to_int(r) when is_integer(r), do: r
  defp to_int(r), do: String.to_integer(r)

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

  test "the Elixir nodes really run different OTP releases", %{peers: peers, nodes: nodes} do
    for {peer, want} <- peers do
      assert otp_release(peer) == want, "#{peer.label} runs OTP #{inspect(otp_release(peer))}"
    end

    releases = Enum.map(peers, &elem(&1, 1))
    assert Enum.uniq(releases) == releases, "two peers of one release: #{inspect(releases)}"

    # ... and they talk to each other directly as well, within OTP's window.
    for {a, ra} <- peers, {b, rb} <- peers, a != b, not too_far?(ra, rb) do
      assert :rpc.call(a.name, Node, :ping, [b.name], 10_000) == :pong, "#{a.label} -> #{b.label}"
    end

    # The Chat apps (and their pg) all survived the meeting.
    for peer <- nodes do
      assert is_pid(:rpc.call(peer.name, Process, :whereis, [Chat.TaskSupervisor], 10_000)),
             peer.label
    end
  end

  test "each calls the C++ moebi with Chat.send_message: nil, and chicken? printed on each",
       %{moebi: moebi, nodes: nodes} do
    for peer <- nodes do
      msg =
        "from #{peer.label} on OTP #{otp_release(peer)} (#{System.unique_integer([:positive])})"

      {result, text} = remote_send(peer, moebi.name, msg)
      assert result == nil, "#{peer.label}: Chat.send_message returned #{inspect(result)}"

      assert String.split(text, "\n", trim: true) == ["chicken?"],
             "#{peer.label} printed #{inspect(text)}"

      assert_prints(moebi, msg)
      assert count(moebi, msg) == 1
    end
  end

  test "all call the C++ moebi at the same time", %{moebi: moebi, nodes: nodes} do
    tag = System.unique_integer([:positive])

    results =
      nodes
      |> Enum.map(fn peer ->
        msg = "concurrent #{tag} from #{peer.label}"
        {msg, Task.async(fn -> remote_send(peer, moebi.name, msg) end)}
      end)
      |> Enum.map(fn {msg, task} -> {msg, Task.await(task, 30_000)} end)

    for {msg, {result, text}} <- results do
      assert result == nil

      assert String.split(text, "\n", trim: true) == ["chicken?"],
             "#{msg}: printed #{inspect(text)}"

      assert_prints(moebi, msg)
      assert count(moebi, msg) == 1
    end
  end

  test "chat-node send reaches each (exit 0, printed once on each)", %{nodes: nodes} do
    for peer <- nodes do
      msg = "C++ client to #{peer.label} #{System.unique_integer([:positive])}"
      r = cli_send(peer.name, msg)
      assert r.status == 0, "chat-node send to #{peer.label} failed: #{inspect(r)}"
      refute "chicken?" in r.stdout
      assert_prints(peer, msg)
      barrier(peer)
      assert count(peer, msg) == 1
    end
  end

  test "chat-node ping answers pong for each", %{nodes: nodes} do
    for peer <- nodes do
      r = cli_ping(peer.name)
      assert {r.status, r.stdout} == {0, ["pong"]}, "#{peer.label}: #{inspect(r)}"
    end
  end
end
