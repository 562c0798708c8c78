# it: hidden
# Issue 17's rows about what a peer can make the node hold or wait on: a stdout nobody reads, a
# frame built to blow up when decoded, frames queued for a connection stuck in its handshake,
# and calls naming made-up nodes. Each attack runs from an attacker node of its own
# (bench/hostile/attacks.exs, shared with scripts/bench) while this VM calls the node every
# ~50 ms (GenServer.call :count): the calls are served throughout, and memory stays bounded
# and comes back near where it was. Timings are only printed; the figures are scripts/bench's.
Code.require_file("support/hostile_it.exs", __DIR__)

defmodule ChatIT.T22HostileLoadTest do
  use ExUnit.Case, async: false
  import ChatIT
  import ChatIT.Hostile
  alias ChatIT.OsProc

  test "a stdout nobody reads: the printing peer is paused, never dropped; others are served; SIGTERM exits at once" do
    dir = System.fetch_env!("IT_TMPDIR")
    fifo = Path.join(dir, "stuck-#{System.unique_integer([:positive])}")
    {_, 0} = System.cmd("mkfifo", [fifo])
    # A reader that holds the pipe open and never reads it.
    {:ok, reader} =
      OsProc.start("stuck-reader", "/bin/sh", ["-c", "exec sleep 1000000 < \"$0\"", fifo])

    on_exit(fn -> OsProc.stop(reader, 1_000) end)
    name = unique("stuck")

    args = [
      "-c",
      ~S(exec "$0" "$@" > "$FIFO"),
      chat_node_exe(),
      "--name",
      Atom.to_string(name),
      "--cookie",
      cookie(),
      "--net-ticktime",
      "4",
      "--stdout-buffer-mb",
      "1"
    ]

    {:ok, proc} = OsProc.start("stuck", "/bin/sh", args, [{"FIFO", fifo}])

    node = %ChatIT.Peer{
      name: name,
      kind: :cpp,
      proc: proc,
      os_pid: OsProc.os_pid(proc),
      label: "stuck"
    }

    on_exit(fn -> stop(node) end)
    # Its "Node name:" line goes to the pipe: wait for it to answer instead.
    wait_until(fn -> answers?(name) end, 20_000, "#{name} to answer")

    {result, _stats, rss} =
      measured(
        node,
        fn a -> Hostile.Attacker.run(a, :flood_chat, [name, 40_000, 1_000, 3_000], 60_000) end,
        then: fn {_peer, attacker_node} ->
          # Three net_ticktimes with its reading paused: the attacker is still connected.
          Process.sleep(12_000)
          assert name in :erpc.call(attacker_node, Node, :list, [])
        end
      )

    # The sender was held back (its BEAM suspends it once the socket buffer is full).
    assert result.sent_all == false, inspect(result)
    # 1 MB of soft limit and 4 MB of hard limit, whatever was sent.
    assert rss.peak < rss.base + mb(24), "RSS #{rss.base} -> #{rss.peak} kB"
    log = log_of(node)
    assert log =~ "pausing the peers that print"
    refute log =~ "no tick or message from the peer"

    t0 = System.monotonic_time(:millisecond)
    OsProc.signal(proc, "TERM")
    assert {:ok, _} = OsProc.await_exit(proc, 10_000)
    IO.puts("  exited #{System.monotonic_time(:millisecond) - t0} ms after SIGTERM")

    assert File.read!(OsProc.stderr_path(proc)) =~
             ~r/stdout is not being read: \d+ line\(s\) \(\d+ bytes\) not printed/
  end

  test "a frame holding a list of 8M [] is refused like an oversized frame, without the gigabyte" do
    kate = start_cpp(unique("kate"))

    {result, _stats, rss} =
      measured(kate, fn a ->
        Hostile.Attacker.run(a, :nil_bomb, [kate.name, 8_000_000], 60_000)
      end)

    assert result.connection == :dropped, inspect(result)
    # The 8 MB frame itself, not 576 MB of decoded terms.
    assert rss.peak < rss.base + mb(64), "RSS #{rss.base} -> #{rss.peak} kB"
    # ASan keeps what is freed in its quarantine and never trims: memory coming back is
    # judged in the plain build.
    if not asan_build?(),
      do: assert(rss.after < rss.base + mb(8), "RSS #{rss.base} -> #{rss.after} kB after")

    assert log_of(kate) =~ "would decode to more than"
  end

  # 12 calls, each printing 4 MB through a group leader on a node that never completes a
  # handshake; the node's RSS meanwhile.
  defp print_through_hole(kate) do
    {result, _stats, rss} =
      measured(kate, fn a ->
        Hostile.Attacker.run(a, :spawn_io_hold, [kate.name, 12, 4_194_304, :hole], 60_000)
      end)

    assert result.spawns == 12, inspect(result)
    rss
  end

  test "frames queued for a connection stuck in its handshake count against --max-queue-mb" do
    kate = start_cpp(unique("kate"), args: ["--max-queue-mb", "2"])

    # The first io_request alone is past 2 MB, and that connection is given up.
    rss = print_through_hole(kate)
    assert log_of(kate) =~ "queued for connections being set up"
    # ASan keeps what is freed in its quarantine and never trims: memory coming back is
    # judged in the plain build.
    if not asan_build?(),
      do: assert(rss.after < rss.base + mb(8), "RSS #{rss.base} -> #{rss.after} kB after")
  end

  test "calls printing through a connection stuck in its handshake wait while it is busy, then drop their lines" do
    kate = start_cpp(unique("kate"), args: ["--max-io-wait-mb", "8"])

    # The first io_request is queued for that connection, which is then busy (past 1 MB):
    # the next call keeps its line (8 MB may wait), the others drop theirs at once, without
    # copying them. The kept one goes out when the connection fails (the hole closes with the
    # attacker), or is dropped after 5 s.
    rss = print_through_hole(kate)
    assert log_of(kate) =~ "is busy:"
    refute log_of(kate) =~ "queued for connections being set up"

    # The calls hold their 4 MB arguments while they run; what waits is 8 MB of lines and one
    # 4 MB frame queued, not another 48.
    if not asan_build?(),
      do: assert(rss.peak < rss.base + mb(48 + 12 + 40), "RSS #{rss.base} -> #{rss.peak} kB")

    if not asan_build?(),
      do: assert(rss.after < rss.base + mb(8), "RSS #{rss.base} -> #{rss.after} kB after")
  end

  test "calls whose group leader never answers hold at most --max-io-wait-mb; the rest go on" do
    kate = start_cpp(unique("kate"), args: ["--max-io-wait-mb", "16"])

    # 24 calls printing 2 MB each to a group leader on the attacker that never answers: 48 MB
    # would wait for io_reply; 16 MB (8 calls) do, and the others go on at once.
    {result, _stats, rss} =
      measured(kate, fn a ->
        Hostile.Attacker.run(a, :spawn_io_hold, [kate.name, 24, 2_097_152, :attacker], 60_000)
      end)

    assert result.spawns == 24, inspect(result)
    assert log_of(kate) =~ "calls waiting for io_reply hold"

    if not asan_build?(),
      do: assert(rss.after < rss.base + mb(8), "RSS #{rss.base} -> #{rss.after} kB after")
  end

  test "3,000 calls naming made-up nodes: they fail fast, the node is served and keeps nothing" do
    kate = start_cpp(unique("kate"), args: ["--net-ticktime", "4"])

    {result, _stats, rss} =
      measured(
        kate,
        fn a -> Hostile.Attacker.run(a, :made_up_calls, [kate.name, 3_000], 120_000) end,
        # Why each connection failed is kept 10 s for the callers that ask (the web form).
        settle_min_ms: 13_000
      )

    assert result.answered == 3_000, inspect(result)
    # ASan keeps what is freed in its quarantine and never trims: memory coming back is
    # judged in the plain build.
    if not asan_build?(),
      do: assert(rss.after < rss.base + mb(4), "RSS #{rss.base} -> #{rss.after} kB after")
  end
end
