# Node.ping from a real Elixir node (the test VM) to the C++ node.
defmodule ChatIT.T01PingTest do
  use ExUnit.Case, async: false
  import ChatIT

  test "Node.ping of a running C++ node answers :pong and connects the nodes" do
    kate = start_cpp(unique("kate"))
    assert within(15_000, "Node.ping", fn -> Node.ping(kate.name) end) == :pong
    assert kate.name in Node.list()
    # A second ping reuses the connection.
    assert within(15_000, "second Node.ping", fn -> Node.ping(kate.name) end) == :pong
  end

  test "Node.ping of a node that does not exist answers :pang" do
    nobody = unique("nobody")
    assert within(15_000, "Node.ping", fn -> Node.ping(nobody) end) == :pang
    refute nobody in Node.list()
  end

  test "the C++ node registers its short name and a listen port with EPMD" do
    kate = start_cpp(unique("kate"))
    assert registered?(kate.name)
    port = dist_port(kate.name)
    assert is_integer(port) and port > 0 and port < 65_536
  end
end
