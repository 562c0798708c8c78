# it: hidden
# Calls that fail the way gen:call fails: a node without Chat.TaskSupervisor answers noproc at
# once, a node that dies in the middle of a call gives nodedown at once, and a call the inbox
# does not know crashes it (the caller gets the exit) and its supervisor starts a new one, as
# elixir_peer's GenServer does. Services killed outright come back with new pids.
defmodule T18Calls do
  use ExUnit.Case, async: false
  import ChatIT

  # An Elixir node that runs no chat app, and one whose Chat.TaskSupervisor never answers.
  defp start_bare(name, code) do
    args = ["--name", Atom.to_string(name), "--cookie", cookie(), "-e", code <> "\nIO.puts(\"IT-READY\")\nProcess.sleep(:infinity)"]
    {:ok, proc} = ChatIT.OsProc.start(Atom.to_string(name), System.find_executable("elixir"), args)
    :ok = ChatIT.OsProc.await_line(proc, "IT-READY", 20_000)
    on_exit(fn -> ChatIT.OsProc.stop(proc) end)
    proc
  end

  test "chat-node send to a node without Chat.TaskSupervisor fails at once with noproc" do
    bare = unique("bare")
    start_bare(bare, ":ok")
    r = cli_send(bare, "anyone?")
    assert r.status == 1, inspect(r)
    assert r.stderr =~ "noproc"
    assert r.stderr =~ "GenServer"
    refute r.stderr =~ "timeout"
  end

  test "a node that dies in the middle of a call gives nodedown, not a timeout" do
    mute = unique("mute")
    # A registered Chat.TaskSupervisor that takes the call and never answers.
    proc = start_bare(mute, "Process.register(spawn(fn -> Process.sleep(:infinity) end), Chat.TaskSupervisor)")
    parent = self()
    spawn(fn -> send(parent, {:cli, cli_send(mute, "hello?", timeout: 20_000)}) end)
    # The call is under way once the client's node shows up on the mute node.
    wait_until(fn -> Enum.any?(List.wrap(rpc(mute, Node, :list, [:hidden])), &String.starts_with?(Atom.to_string(&1), "cli")) end,
               10_000, "the client connected")
    ChatIT.OsProc.signal(proc, "KILL")
    assert_receive {:cli, r}, 20_000
    assert r.status in [1, 2], inspect(r)
    assert r.stderr =~ "nodedown" or r.stderr =~ "connection lost", r.stderr
    refute r.stderr =~ "timeout"
  end

  test "an unknown call crashes Chat as a GenServer would, and its supervisor restarts it" do
    kate = start_cpp(unique("kate"))
    alex = start_elixir(unique("alex"))
    for n <- [kate.name, alex.name] do
      before = rpc(n, :erlang, :whereis, [Chat])
      assert {{:function_clause, [{Chat.Inbox, :handle_call, [:bogus, _from, _count], _} | _]}, {GenServer, :call, _}} =
               catch_exit(GenServer.call({Chat, n}, :bogus, 5_000))
      wait_until(fn -> (p = rpc(n, :erlang, :whereis, [Chat])) != before and is_pid(p) end, 5_000, "a new Chat on #{n}")
      # The new inbox works.
      send({Chat, n}, "after the crash")
      assert GenServer.call({Chat, n}, :count, 5_000) >= 1
    end
  end

  test "after answering a call the node need not wake for its demonitor, and what comes instead still arrives" do
    kate = start_cpp(unique("kate"))
    # A plain call first: the node learns how long this peer's demonitor is. It holds only for
    # calls some time apart (a next frame sooner than half a millisecond is not worth it).
    c0 = GenServer.call({Chat, kate.name}, :count, 5_000)
    Process.sleep(2)
    # gen:call by hand, without its demonitor: the node holds the socket for one that never comes.
    mref = :erlang.monitor(:process, {Chat, kate.name}, [{:alias, :demonitor}])
    send({Chat, kate.name}, {:"$gen_call", {self(), [:alias | mref]}, :count})
    assert_receive {[:alias | ^mref], ^c0}, 5_000
    # Shorter than a demonitor, it waits in the kernel until the node stops holding (10 ms);
    # nothing else crosses this connection for seconds (ticks: net_ticktime / 4).
    send({Chat, kate.name}, "x")
    assert_prints(kate, "x", 5_000)
    Process.demonitor(mref, [:flush])
    assert GenServer.call({Chat, kate.name}, :count, 5_000) == c0 + 1
  end

  test "a caller whose calls each start with a monitor: a monitor that no request follows is still answered" do
    kate = start_cpp(unique("kate"))
    # Calls, each a monitor, a request and a demonitor: the node learns to hold past the
    # demonitor and the next call's monitor, waking once a call, for the request, where the
    # calls come some time apart.
    for _ <- 1..20 do
      GenServer.call({Chat, kate.name}, :count, 5_000)
      Process.sleep(2)
    end
    # A demonitor then a monitor alone, no longer than those of the calls (:count is in this
    # connection's atom cache as Chat is), and nothing after them: the node must stop holding
    # (10 ms) and answer it; no process has that name.
    ref = Process.monitor({:count, kate.name})
    assert_receive {:DOWN, ^ref, :process, {:count, _}, :noproc}, 5_000
    assert GenServer.call({Chat, kate.name}, :count, 5_000) >= 0
  end

  test "--busy-wait none and long (and CHAT_BUSY_WAIT) answer as the default does; other values are refused" do
    none = start_cpp(unique("kate"), args: ["--busy-wait", "none"])
    long = start_cpp(unique("kate"), env: [{"CHAT_BUSY_WAIT", "long"}])
    for n <- [none.name, long.name] do
      c0 = GenServer.call({Chat, n}, :count, 5_000)
      for _ <- 1..50, do: GenServer.call({Chat, n}, :count, 5_000)
      send({Chat, n}, "busy-wait")
      assert GenServer.call({Chat, n}, :count, 5_000) == c0 + 1
    end

    r = cli(cli_opts() ++ ["--busy-wait", "fast", "ping", Atom.to_string(none.name)])
    assert r.status == 64, inspect(r)
    assert r.stderr =~ "--busy-wait", r.stderr
  end

  test "services killed outright come back with new pids and keep serving" do
    kate = start_cpp(unique("kate"))
    for name <- [Chat.TaskSupervisor, Chat, :net_kernel, :rex, :global_name_server, :pg] do
      before = rpc(kate.name, :erlang, :whereis, [name])
      assert is_pid(before), "#{name} runs"
      Process.exit(before, :kill)
      wait_until(fn -> (p = rpc(kate.name, :erlang, :whereis, [name])) != before and is_pid(p) end, 5_000,
                 "#{name} back with a new pid")
    end

    assert Chat.send_message(kate.name, "still served") == nil
    assert_prints(kate, "still served")
    assert Node.ping(kate.name) == :pong
  end
end
