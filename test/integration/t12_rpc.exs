# :rpc and :erpc into C++ nodes (SPAWN_REQUEST), compared where it matters with the same call
# against a real Elixir node running the same Chat app: the C++ node must answer exactly as a
# BEAM does, including the shape of errors.
defmodule ChatIT.T12RpcTest do
  use ExUnit.Case, async: false
  import ChatIT
  import ExUnit.CaptureIO

  setup_all do
    %{kate: start_cpp(unique("kate")), beam: start_elixir(unique("beamkate"))}
  end

  test "rpc.call and erpc.call of Chat.receive_message/2 return nil; the output reaches the caller",
       %{kate: kate} do
    msg = "via rpc #{System.unique_integer([:positive])}"
    out = capture_io(fn -> assert :rpc.call(kate.name, Chat, :receive_message, [msg, node()]) == nil end)
    # Spawned with the caller's group leader, as a BEAM does: IO.puts lands on the caller.
    assert out == msg <> "\n"

    msg2 = "via erpc #{System.unique_integer([:positive])}"
    out2 = capture_io(fn -> assert :erpc.call(kate.name, Chat, :receive_message, [msg2, node()]) == nil end)
    assert out2 == msg2 <> "\n"
  end

  test "the lesson's receive_message/1 returns :ok", %{kate: kate} do
    capture_io(fn -> assert :rpc.call(kate.name, Chat, :receive_message, ["lesson via rpc"]) == :ok end)
    capture_io(fn -> assert :erpc.call(kate.name, Chat, :receive_message, ["lesson via erpc"]) == :ok end)
  end

  test "rpc to a C++ moebi: chicken? comes back to the caller", _ctx do
    moebi = start_cpp(moebi())

    {result, printed_here} =
      capture_chat_output(fn ->
        capture_io(fn -> send(self(), {:r, :rpc.call(moebi.name, Chat, :receive_message, ["rpc moebi", node()])}) end)
        assert_received {:r, r}
        r
      end)

    assert result == nil
    assert printed_here == "chicken?\n"
  end

  test "inspection functions: node, nodes, Node.list, Node.self, alive?", %{kate: kate} do
    assert :rpc.call(kate.name, :erlang, :node, []) == kate.name
    assert :erpc.call(kate.name, Node, :self, []) == kate.name
    assert node() in :rpc.call(kate.name, :erlang, :nodes, [])
    assert node() in :erpc.call(kate.name, Node, :list, [])
    assert :erpc.call(kate.name, :erlang, :nodes, [:hidden]) == []
    assert kate.name in :erpc.call(kate.name, :erlang, :nodes, [[:this, :visible]])
    assert :erpc.call(kate.name, :erlang, :is_alive, []) == true
    assert is_list(:erpc.call(kate.name, :os, :getpid, []))
  end

  test "an unknown function fails exactly as on a BEAM node", %{kate: kate, beam: beam} do
    cpp = :rpc.call(kate.name, Chat, :no_such_fun, [1])
    ref = :rpc.call(beam.name, Chat, :no_such_fun, [1])
    assert {:badrpc, {:EXIT, {:undef, [{Chat, :no_such_fun, [1], _} | _]}}} = cpp
    assert cpp == ref

    cpp_err = catch_error(:erpc.call(kate.name, Chat, :no_such_fun, []))
    ref_err = catch_error(:erpc.call(beam.name, Chat, :no_such_fun, []))
    assert {:exception, :undef, [{Chat, :no_such_fun, [], []}]} = cpp_err
    assert cpp_err == ref_err

    # A module we do not implement at all.
    assert {:badrpc, {:EXIT, {:undef, [{:lists, :reverse, [[1]], _} | _]}}} =
             :rpc.call(kate.name, :lists, :reverse, [[1]])
  end

  test "erpc.call with a timeout: answers in time, and times out like a BEAM", %{kate: kate} do
    assert :erpc.call(kate.name, :erlang, :node, [], 5_000) == kate.name

    # A node that accepts connections but never completes a handshake (a stopped VM):
    # Chat.send_message to it from kate cannot finish, so the caller's timeout fires.
    hole = start_elixir(unique("hole"))
    signal(hole, "STOP")
    on_exit(fn -> signal(hole, "CONT") end)

    started = System.monotonic_time(:millisecond)
    assert catch_error(:erpc.call(kate.name, Chat, :send_message, [hole.name, "never"], 300)) == {:erpc, :timeout}
    assert System.monotonic_time(:millisecond) - started < 3_000
    assert :rpc.call(kate.name, Chat, :send_message, [hole.name, "never"], 300) == {:badrpc, :timeout}
    # kate is still fine.
    assert :erpc.call(kate.name, :erlang, :node, [], 5_000) == kate.name
  end

  test "erpc.multicall across a C++ node, a BEAM node and a node that is down",
       %{kate: kate, beam: beam} do
    ghost = name("ghost#{System.unique_integer([:positive])}")
    result = :erpc.multicall([kate.name, beam.name, ghost], :erlang, :node, [], 5_000)
    assert result == [{:ok, kate.name}, {:ok, beam.name}, {:error, {:erpc, :noconnection}}]

    {good, bad} = :rpc.multicall([kate.name, beam.name, ghost], :erlang, :node, [], 5_000)
    assert Enum.sort(good) == Enum.sort([kate.name, beam.name])
    assert bad == [ghost]
  end

  test "rpc.cast runs the function; its output reaches the caller", %{kate: kate} do
    msg = "cast #{System.unique_integer([:positive])}"
    {:ok, io} = StringIO.open("")
    gl = Process.group_leader()
    Process.group_leader(self(), io)
    assert :rpc.cast(kate.name, Chat, :receive_message, [msg]) == true
    Process.group_leader(self(), gl)
    wait_until(fn -> elem(StringIO.contents(io), 1) == msg <> "\n" end, 10_000, "the cast's output")
  end

  test "rpc.block_call goes through rex", %{kate: kate} do
    assert :rpc.block_call(kate.name, :erlang, :node, []) == kate.name
    assert {:badrpc, {:EXIT, {:undef, _}}} = :rpc.block_call(kate.name, Chat, :nope, [])
  end

  test "spawn with monitor and link: exit reasons as on a BEAM", %{kate: kate} do
    {pid, ref} = Node.spawn_monitor(kate.name, Chat, :no_such_fun, [])
    assert node(pid) == kate.name
    assert_receive {:DOWN, ^ref, :process, ^pid, {:undef, [{Chat, :no_such_fun, [], []}]}}, 5_000

    {pid2, ref2} = Node.spawn_monitor(kate.name, :erlang, :node, [])
    assert_receive {:DOWN, ^ref2, :process, ^pid2, :normal}, 5_000

    Process.flag(:trap_exit, true)
    pid3 = Node.spawn_link(kate.name, Chat, :no_such_fun, [:x])
    assert_receive {:EXIT, ^pid3, {:undef, [{Chat, :no_such_fun, [:x], []}]}}, 5_000
    Process.flag(:trap_exit, false)
  end
end
