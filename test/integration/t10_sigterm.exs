# Shutting the C++ node down with a signal: exit status 0 and its name is
# gone from EPMD (so it can be started again at once).
defmodule ChatIT.T10SigtermTest do
  use ExUnit.Case, async: false
  import ChatIT

  defp stops_cleanly(peer, sig) do
    assert registered?(peer.name)
    assert Node.ping(peer.name) == :pong
    signal(peer, sig)
    assert await_exit(peer, 10_000) == {:ok, 0}
    wait_until(fn -> not registered?(peer.name) end, 5_000, "#{peer.name} to leave EPMD")

    wait_until(
      fn -> peer.name not in Node.list() end,
      5_000,
      "the connection to #{peer.name} to close"
    )
  end

  test "SIGTERM: exits 0 and unregisters from EPMD" do
    stops_cleanly(start_cpp(unique("kate")), "TERM")
  end

  test "SIGINT: exits 0 and unregisters from EPMD" do
    stops_cleanly(start_cpp(unique("kate")), "INT")
  end

  # Lines that come within a few ms of each other wait to be written together: the exit
  # writes them all.
  test "SIGTERM right after a burst of messages: every line is on stdout" do
    kate = start_cpp(unique("kate"))
    sent = for i <- 1..20, do: "last words #{i}"
    for text <- sent, do: assert(Chat.send_message(kate.name, text) == nil)
    signal(kate, "TERM")
    assert await_exit(kate, 10_000) == {:ok, 0}
    printed = lines(kate)
    assert Enum.filter(printed, &String.starts_with?(&1, "last words ")) == sent, describe(kate)
  end

  test "SIGTERM while idle connections exist, then the same name starts again" do
    moebi = start_cpp(moebi())

    {:ok, sock} =
      :gen_tcp.connect({127, 0, 0, 1}, dist_port(moebi.name), [:binary, active: false])

    stops_cleanly(moebi, "TERM")
    :gen_tcp.close(sock)

    again = start_cpp(moebi())
    assert Node.ping(again.name) == :pong

    {result, printed_here} =
      capture_chat_output(fn -> Chat.send_message(again.name, "back again") end)

    assert result == nil
    assert printed_here == "chicken?\n"
  end
end
