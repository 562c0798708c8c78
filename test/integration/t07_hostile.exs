# it: hidden
# Hostile peers on the C++ node's distribution port: silent connections and
# garbage bytes must not stop it from serving real nodes promptly.
# amanda is hidden: when a bad frame closes her connection to kate, a visible
# amanda's global would (as between BEAM nodes, prevent_overlapping_partitions)
# ask the bystander to drop kate too, and the test is about that one connection.
defmodule ChatIT.T07HostileTest do
  use ExUnit.Case, async: false
  import ChatIT

  @loopback {127, 0, 0, 1}

  defp connect(port) do
    {:ok, sock} = :gen_tcp.connect(@loopback, port, [:binary, active: false], 5_000)
    sock
  end

  test "silent sockets and garbage do not block Chat.send_message from real nodes" do
    kate = start_cpp(unique("kate"))
    port = dist_port(kate.name)

    # Connections that never say anything.
    silent = for _ <- 1..8, do: connect(port)

    # Connections that send random bytes, and some that start a frame and
    # never finish it.
    garbage =
      for i <- 1..12 do
        sock = connect(port)
        _ = :gen_tcp.send(sock, :crypto.strong_rand_bytes(64 * i))
        sock
      end

    truncated =
      for payload <- [<<0xFF, 0xFF, ?N>>, <<0, 40, ?N, 0, 0>>, <<0>>] do
        sock = connect(port)
        :ok = :gen_tcp.send(sock, payload)
        sock
      end

    # The test VM has not talked to kate yet: these are fresh handshakes
    # while the hostile sockets are open.
    tag = "amid garbage #{System.unique_integer([:positive])}"

    for i <- 1..10 do
      msg = "#{tag} #{i}"

      assert within(10_000, "Chat.send_message ##{i}", fn -> Chat.send_message(kate.name, msg) end) ==
               nil

      assert_prints(kate, msg)
    end

    # A brand-new client node also gets through.
    r = cli_send(kate.name, "#{tag} from a client")
    assert r.status == 0, inspect(r)
    assert_prints(kate, "#{tag} from a client")

    Enum.each(silent ++ garbage ++ truncated, &:gen_tcp.close/1)

    # And after they are gone, kate is still fine.
    assert Chat.send_message(kate.name, "#{tag} after") == nil
    assert_prints(kate, "#{tag} after")
  end

  test "a malformed handshake message gets the connection closed" do
    kate = start_cpp(unique("kate"))
    sock = connect(dist_port(kate.name))
    # A complete 2-byte-length frame whose tag is neither 'n' nor 'N'.
    :ok = :gen_tcp.send(sock, <<0, 6, ?z, 1, 2, 3, 4, 5>>)
    assert {:error, :closed} = :gen_tcp.recv(sock, 0, 10_000)
    assert Chat.send_message(kate.name, "still there") == nil
    assert_prints(kate, "still there")
  end

  # OTP 29's native records: a BEAM of 29.1 sends one as NATIVE_RECORD_EXT (tag 67) even to a
  # peer that did not offer DFLAG_NATIVE_RECORDS, and an OTP 25 or 27 BEAM takes it for a
  # corrupted term and drops that connection. The C++ node does what they do: the connection
  # that carried it closes, every other one stays up, and the sender can connect again.
  if String.to_integer(System.otp_release()) >= 29 do
    defp native_record do
      source = [
        "-module(it_native_record).",
        "-export([new/0]).",
        "-record #point{x = 0, y = 0}.",
        "new() -> #point{x = 1, y = 2}."
      ]

      forms =
        for line <- source do
          {:ok, tokens, _} = :erl_scan.string(String.to_charlist(line))
          {:ok, form} = :erl_parse.parse_form(tokens)
          form
        end

      {:ok, mod, beam} = :compile.forms(forms)
      {:module, ^mod} = :code.load_binary(mod, ~c"it_native_record.erl", beam)
      mod.new()
    end

    test "an OTP 29 native record closes the connection that carried it, and only it" do
      kate = start_cpp(unique("kate"))
      bystander = start_elixir(unique("bystander"))
      assert :rpc.call(bystander.name, Chat, :send_message, [kate.name, "bystander here"]) == nil
      assert_prints(kate, "bystander here")
      assert Chat.send_message(kate.name, "before the record") == nil
      assert_prints(kate, "before the record")

      record = native_record()
      refute is_tuple(record)
      true = Node.monitor(kate.name, true)
      send({Chat, kate.name}, record)
      kate_name = kate.name
      assert_receive {:nodedown, ^kate_name}, 10_000

      assert kate.name in :rpc.call(bystander.name, Node, :list, [], 10_000)
      assert Chat.send_message(kate.name, "after the record") == nil
      assert_prints(kate, "after the record")
      assert :rpc.call(bystander.name, Chat, :send_message, [kate.name, "bystander again"]) == nil
      assert_prints(kate, "bystander again")
    end
  end

  test "garbage from many short-lived connections at once" do
    kate = start_cpp(unique("kate"))
    port = dist_port(kate.name)

    1..40
    |> Task.async_stream(
      fn i ->
        sock = connect(port)
        _ = :gen_tcp.send(sock, :crypto.strong_rand_bytes(16 + i))
        :gen_tcp.close(sock)
      end,
      max_concurrency: 20,
      timeout: 15_000
    )
    |> Stream.run()

    assert within(10_000, "Node.ping", fn -> Node.ping(kate.name) end) == :pong
    assert Chat.send_message(kate.name, "survived the storm") == nil
    assert_prints(kate, "survived the storm")
  end
end
