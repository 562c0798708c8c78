# The BEAM client of the traffic-rate rows (scripts/lib/bench-gaps.sh runs it): round trips
# spaced by a pause, against a C++ node and a BEAM node in alternated blocks, with each
# node's CPU time read from /proc around every block.
#
#   elixir --name N@127.0.0.1 --cookie C -pa ELIXIR_PEER_EBIN bench/gap_client.exs \
#       CPP_NODE CPP_PID BEAM_NODE BEAM_PID GAPS_MS WHATS BLOCK_MS MIN_CALLS MAX_CALLS WARMUP IDLE_S \
#       [NONE_NODE NONE_PID]
#
#   GAPS_MS   comma-separated pauses between calls in ms, e.g. 0,0.2,1,5,20,100
#   WHATS     comma-separated: rt (Chat.send_message/2), call (GenServer.call {Chat, node} :count)
#   BLOCK_MS  each block lasts about this long: calls = BLOCK_MS / (gap + 0.3 ms), within
#             MIN_CALLS..MAX_CALLS
#   WARMUP    back-to-back calls before each block (connections, code and caches warm)
#   IDLE_S    then both nodes are left alone this long (ticks only) and their CPU is read
#   NONE_NODE a third target, reported as side=cpp_none: a C++ node started with
#             --busy-wait none, so that the tables show what the default's polling costs and buys
#
# One line per block:
#   gap what=rt side=cpp gap_ms=1 calls=N p50_us=… p99_us=… mean_us=… cpu_us=… gap_us=…
#       wakes=… run_wait_us=… t0_ns=… t1_ns=…
# where cpu_us is the node's CPU time (all threads, /proc/PID/task/*/schedstat) over the
# block divided by its calls, pauses included, gap_us the mean pause actually taken
# (Process.sleep rounds up to the BEAM's timer), wakes the node's voluntary context switches
# (all threads, /proc/PID/task/*/status) per call: how often it went to sleep and had to be
# woken, run_wait_us its time per call runnable but waiting for a CPU (schedstat's second
# field). t0_ns and t1_ns bound the block in wall-clock time (CLOCK_REALTIME, as a packet
# capture stamps packets). Then one line per node:
#   idle side=cpp secs=S cpu_us_per_s=…
# With GAP_CALLS=FILE in the environment, each block also appends one line per call to FILE,
# "START_NS DT_NS": when the call began (CLOCK_REALTIME) and how long it took, so that a packet
# capture and a scheduler trace of the run can be split into calls (bench/turns.awk,
# bench/sched-waits.awk). Nothing is read around a call: reads of /proc between calls (a file
# read on a dirty I/O scheduler) slowed both targets' calls, a BEAM's `:count` p50 at 20 ms
# pauses from 222 to 390 us.
#
# Pauses of 1 ms and more are Process.sleep, which lets the client's schedulers sleep as a
# real sporadic client would. Shorter pauses cannot be slept on a BEAM (its timers count
# milliseconds): they are busy-waited, so the client stays awake and only the node sees the
# pause. The order of the targets alternates from block to block (C++ first, then BEAM
# first; a third target goes between them), so neither always runs right after the other.
defmodule Bench.GapClient do
  @deadline_ms 30_000

  def main([cpp, cpp_pid, beam, beam_pid, gaps, whats, block_ms, min_calls, max_calls, warmup, idle_s | none]) do
    third =
      case none do
        [] -> []
        [node, pid] -> [{"cpp_none", String.to_atom(node), String.to_integer(pid)}]
      end

    targets =
      [{"cpp", String.to_atom(cpp), String.to_integer(cpp_pid)}] ++
        third ++ [{"beam", String.to_atom(beam), String.to_integer(beam_pid)}]

    for {_, node, _} <- targets, do: wait_ready(node, System.monotonic_time(:millisecond) + @deadline_ms)
    gaps = gaps |> String.split(",") |> Enum.map(&parse_ms/1)
    whats = String.split(whats, ",")
    [block_ms, min_calls, max_calls, warmup, idle_s] =
      Enum.map([block_ms, min_calls, max_calls, warmup, idle_s], &String.to_integer/1)

    blocks = for gap <- gaps, what <- whats, do: {gap, what}

    blocks
    |> Enum.with_index()
    |> Enum.each(fn {{gap, what}, i} ->
      order = if rem(i, 2) == 0, do: targets, else: Enum.reverse(targets)
      calls = gap |> then(&(block_ms / (&1 + 0.3))) |> round() |> max(min_calls) |> min(max_calls)
      for target <- order, do: block(target, what, gap, calls, warmup)
    end)

    idle(targets, idle_s)
  end

  defp parse_ms(s) do
    case Float.parse(s) do
      {v, ""} -> v
      _ -> raise ArgumentError, "not a number of ms: #{s}"
    end
  end

  defp wait_ready(node, deadline) do
    try do
      GenServer.call({Chat, node}, :count, 1_000)
    catch
      :exit, reason ->
        if System.monotonic_time(:millisecond) > deadline do
          IO.puts(:stderr, "gap client: #{node} never answered :count: #{inspect(reason)}")
          System.halt(2)
        end

        Process.sleep(20)
        wait_ready(node, deadline)
    end
  end

  defp fun("rt", node), do: fn -> Chat.send_message(node, "bench") end
  defp fun("call", node), do: fn -> GenServer.call({Chat, node}, :count) end

  defp block({side, node, pid}, what, gap, calls, warmup) do
    f = fun(what, node)
    for _ <- 1..warmup//1, do: f.()
    pause = pause_fun(gap)
    # The first pause is taken before the CPU is read: the block starts as it goes on.
    slept = pause.()
    {cpu0, wait0, wakes0} = {cpu_ns(pid), run_wait_ns(pid), wakes(pid)}
    wall0 = System.os_time(:nanosecond)
    to_wall = wall0 - System.monotonic_time(:nanosecond)

    {spans, slept} =
      Enum.reduce(1..calls, {[], slept}, fn i, {acc, slept} ->
        t0 = System.monotonic_time(:nanosecond)
        f.()
        dt = System.monotonic_time(:nanosecond) - t0
        # No pause after the last call: the CPU is read as soon as it is answered.
        s = if i < calls, do: pause.(), else: 0
        {[{t0, dt} | acc], slept + s}
      end)

    {cpu1, wait1, wakes1} = {cpu_ns(pid), run_wait_ns(pid), wakes(pid)}
    wall1 = System.os_time(:nanosecond)
    write_calls(System.get_env("GAP_CALLS"), Enum.reverse(spans), to_wall)
    sorted = spans |> Enum.map(&elem(&1, 1)) |> Enum.sort()
    n = length(sorted)
    p50 = Enum.at(sorted, div(n * 50, 100)) / 1000
    p99 = Enum.at(sorted, min(n - 1, div(n * 99, 100))) / 1000
    mean = Enum.sum(sorted) / n / 1000

    IO.puts(
      "gap what=#{what} side=#{side} gap_ms=#{fmt(gap)} calls=#{n} p50_us=#{r(p50)} p99_us=#{r(p99)} " <>
        "mean_us=#{r(mean)} cpu_us=#{r((cpu1 - cpu0) / 1000 / n)} gap_us=#{r(slept / 1000 / n)} " <>
        "wakes=#{Float.round((wakes1 - wakes0) / n, 2)} run_wait_us=#{r((wait1 - wait0) / 1000 / n)} t0_ns=#{wall0} t1_ns=#{wall1}"
    )
  end

  defp write_calls(nil, _, _), do: :ok

  defp write_calls(file, spans, to_wall) do
    File.write!(file, Enum.map(spans, &call_line(&1, to_wall)), [:append])
  end

  defp call_line({t0, dt}, to_wall), do: "#{t0 + to_wall} #{dt}\n"

  defp fmt(gap) when gap == trunc(gap), do: Integer.to_string(trunc(gap))
  defp fmt(gap), do: Float.to_string(gap)
  defp r(v), do: Float.round(v * 1.0, 1)

  # Returns a function that pauses and returns the nanoseconds it paused.
  defp pause_fun(gap) when gap == 0, do: fn -> 0 end

  defp pause_fun(gap) when gap < 1 do
    ns = round(gap * 1_000_000)

    fn ->
      t0 = System.monotonic_time(:nanosecond)
      spin_until(t0 + ns)
      System.monotonic_time(:nanosecond) - t0
    end
  end

  defp pause_fun(gap) do
    ms = round(gap)

    fn ->
      t0 = System.monotonic_time(:nanosecond)
      Process.sleep(ms)
      System.monotonic_time(:nanosecond) - t0
    end
  end

  defp spin_until(t) do
    if System.monotonic_time(:nanosecond) < t, do: spin_until(t), else: :ok
  end

  defp idle(targets, secs) when secs > 0 do
    before = for {side, _, pid} <- targets, do: {side, pid, cpu_ns(pid)}
    t0 = System.monotonic_time(:nanosecond)
    Process.sleep(secs * 1000)
    wall = (System.monotonic_time(:nanosecond) - t0) / 1.0e9

    for {side, pid, c0} <- before do
      IO.puts("idle side=#{side} secs=#{r(wall)} cpu_us_per_s=#{r((cpu_ns(pid) - c0) / 1000 / wall)}")
    end
  end

  defp idle(_, _), do: :ok

  # CPU time (ns) used so far by every thread of an OS process, as scripts/bench reads it.
  defp cpu_ns(pid), do: sum_tasks(pid, "schedstat", &(&1 |> String.split() |> hd()))

  # Time (ns) every thread of an OS process has spent runnable but waiting for a CPU.
  defp run_wait_ns(pid), do: sum_tasks(pid, "schedstat", &(&1 |> String.split() |> Enum.at(1)))

  # Times every thread of an OS process has gone to sleep (voluntary context switches).
  defp wakes(pid) do
    sum_tasks(pid, "status", fn s ->
      [_, n] = Regex.run(~r/^voluntary_ctxt_switches:\s*(\d+)/m, s)
      n
    end)
  end

  defp sum_tasks(pid, file, field) do
    dir = "/proc/#{pid}/task"

    case File.ls(dir) do
      {:ok, tids} ->
        Enum.reduce(tids, 0, fn tid, acc ->
          case File.read("#{dir}/#{tid}/#{file}") do
            {:ok, s} -> acc + String.to_integer(field.(s))
            _ -> acc
          end
        end)

      _ ->
        0
    end
  end
end

Bench.GapClient.main(System.argv())
