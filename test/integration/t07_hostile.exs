# Hostile peers on the C++ node's distribution port: silent connections and
# garbage bytes must not stop it from serving real nodes promptly.
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
