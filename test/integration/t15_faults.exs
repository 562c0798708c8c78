# it: hidden
# Faults: nothing lost or reordered under a burst, nothing leaked when a caller dies in the
# middle of a call, big messages do not pin memory, and the node survives its EPMD dying.
# The callers (amanda, the victim VM) are hidden nodes, so the counters compared below are
# the chat's own: visible peers would add global's and pg's monitors of each other.
defmodule ChatIT.T15FaultsTest do
  use ExUnit.Case, async: false
  import ChatIT

  defp rss_kb(os_pid) do
    [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, File.read!("/proc/#{os_pid}/status"))
    String.to_integer(kb)
  end

  test "100k messages from one process to Chat: each printed exactly once, in order" do
    kate = start_cpp(unique("kate"))
    n = 100_000
    tag = "burst#{System.unique_integer([:positive])}"
    for i <- 1..n, do: send({Chat, kate.name}, "#{tag} #{i}")
    assert GenServer.call({Chat, kate.name}, :count, 60_000) >= n
    barrier(kate)
    got = Enum.filter(lines(kate), &String.starts_with?(&1, tag))
    assert length(got) == n
    assert got == for(i <- 1..n, do: "#{tag} #{i}")
  end

  test "a caller killed in the middle of a call leaves no task, link or monitor behind" do
    port = free_port()
    kate = start_cpp(unique("kate"), args: ["--port", Integer.to_string(port)])
    wait_until(fn -> match?(%{processes: _}, node_counters(port)) end, 10_000, "kate's status page")
    idle = node_counters(port)

    # A node that accepts TCP but never completes a handshake: a stopped VM.
    hole = start_elixir(unique("hole"))
    signal(hole, "STOP")
    on_exit(fn -> signal(hole, "CONT") end)

    # An Elixir caller on another VM asks kate to send to the hole, so kate's task waits on
    # the hole while the caller waits on kate; then that VM dies without a word.
    code = """
    Application.ensure_all_started(:chat)
    IO.puts("CALLING")
    Task.Supervisor.async({Chat.TaskSupervisor, #{inspect(kate.name)}}, Chat, :send_message, [#{inspect(hole.name)}, "x"])
    |> Task.await(:infinity)
    """
    victim_args = ["--hidden", "--name", Atom.to_string(unique("victim")), "--cookie", cookie(), "-pa",
                   System.fetch_env!("ELIXIR_PEER_EBIN"), "-e", code]
    {:ok, victim} = ChatIT.OsProc.start("victim", System.find_executable("elixir"), victim_args)
    :ok = ChatIT.OsProc.await_line(victim, "CALLING", 20_000)
    wait_until(fn -> node_counters(port).processes > idle.processes end, 10_000, "kate's task to start")

    # A second caller, in this VM, whose process is killed while its (unlinked) task runs.
    parent = self()
    caller =
      spawn(fn ->
        t = Task.Supervisor.async_nolink({Chat.TaskSupervisor, kate.name}, Chat, :send_message, [hole.name, "y"])
        send(parent, {:started, t.pid})
        Task.yield(t, :infinity)
      end)

    assert_receive {:started, task_pid}, 10_000
    assert node(task_pid) == kate.name
    ChatIT.OsProc.signal(victim, "KILL")
    Process.exit(caller, :kill)

    # Kate notices both callers are gone and cleans up after them.
    wait_until(
      fn ->
        s = node_counters(port)
        s.processes == idle.processes and s.links == idle.links and s.monitors == idle.monitors
      end,
      15_000,
      "kate's counters back to idle (#{inspect(idle)})"
    )
    ChatIT.OsProc.stop(victim)
  end

  test "memory returns near idle after a 64 MB message" do
    kate = start_cpp(unique("kate"))
    assert :erpc.call(kate.name, :erlang, :node, []) == kate.name
    before = rss_kb(kate.os_pid)
    big = :binary.copy("x", 64 * 1024 * 1024)
    # To a name nobody holds: decoded in full, then dropped, as a BEAM does.
    send({:nobody_here, kate.name}, big)
    assert :erpc.call(kate.name, :erlang, :node, [], 30_000) == kate.name
    wait_until(fn -> rss_kb(kate.os_pid) < before + 16 * 1024 end, 15_000, "RSS back near #{before} kB (now #{rss_kb(kate.os_pid)} kB)")
  end

  test "EPMD killed and restarted: the node registers again and stays reachable by name" do
    kate = start_cpp(unique("kate"))
    short = kate.name |> Atom.to_string() |> String.split("@") |> hd()
    port = System.fetch_env!("ERL_EPMD_PORT")
    {_, 0} = System.cmd("pkill", ["-f", "epmd -port #{port}"])
    wait_until(fn -> not registered?(kate.name) end, 10_000, "EPMD to go away")
    {_, 0} = System.cmd("epmd", ["-port", port, "-daemon"])
    wait_until(fn -> registered?(kate.name) end, 10_000, "#{short} to register again")
    # A new node finds it by name through the new EPMD.
    assert %{status: 0, stdout: ["pong"]} = cli_ping(kate.name)
  end
end
