# The BEAM client of the benchmark ("amanda"). scripts/bench runs it as
#
#   elixir --name amanda@127.0.0.1 --cookie C -pa ELIXIR_PEER_EBIN bench/client.exs MODE TARGET ...
#
#   rt TARGET WARMUP CALLS RUNS
#       Chat.send_message(TARGET, "bench") round trips: WARMUP calls, then RUNS runs of CALLS
#       timed calls; one line per run: "rt run=I calls=N p50_us=… p99_us=… mean_us=…".
#   call TARGET WARMUP CALLS RUNS
#       The same for GenServer.call({Chat, TARGET}, :count), the simplest request/reply, which
#       shows what the client and the distribution alone cost ("call run=…").
#   ff TARGET COUNT SIZE RUNS
#       send({Chat, TARGET}, <<SIZE bytes>>) COUNT times, then GenServer.call({Chat, TARGET},
#       :count), which the target answers only after everything sent before it. One line per
#       run: "ff run=I count=N size=S send_s=… total_s=… msgs_per_s=… counted=K", where send_s
#       is when the sending loop returned (the sender is suspended while the distribution
#       buffer is full) and total_s when the :count answer arrived.
#
# Waits (with a deadline) until TARGET answers the :count call before measuring anything.
defmodule Bench.Client do
  @deadline_ms 30_000

  def main([mode, target | rest]) do
    target = String.to_atom(target)
    wait_ready(target, System.monotonic_time(:millisecond) + @deadline_ms)

    case {mode, Enum.map(rest, &String.to_integer/1)} do
      {what, [warmup, calls, runs]} when what in ["rt", "call"] ->
        round_trips(what, target, warmup, calls, runs)

      {"ff", [count, size, runs]} ->
        fire_and_forget(target, count, size, runs)
    end
  end

  defp wait_ready(target, deadline) do
    try do
      GenServer.call({Chat, target}, :count, 1_000)
    catch
      :exit, reason ->
        if System.monotonic_time(:millisecond) > deadline do
          IO.puts(:stderr, "client: #{target} never answered :count: #{inspect(reason)}")
          System.halt(2)
        end

        # Not up yet (no connection, or Chat not registered yet): try again shortly.
        receive do
        after
          20 -> :ok
        end

        wait_ready(target, deadline)
    end
  end

  defp round_trips(what, target, warmup, calls, runs) do
    fun =
      case what do
        "rt" -> fn -> Chat.send_message(target, "bench") end
        "call" -> fn -> GenServer.call({Chat, target}, :count) end
      end

    for _ <- 1..warmup//1, do: fun.()
    for run <- 1..runs, do: report(what, run, time_calls(fun, calls))
  end

  defp time_calls(fun, calls) do
    for _ <- 1..calls do
      t0 = System.monotonic_time(:nanosecond)
      fun.()
      System.monotonic_time(:nanosecond) - t0
    end
  end

  defp report(what, run, times) do
    sorted = Enum.sort(times)
    n = length(sorted)
    p50 = Enum.at(sorted, div(n * 50, 100)) / 1000
    p99 = Enum.at(sorted, min(n - 1, div(n * 99, 100))) / 1000
    mean = Enum.sum(sorted) / n / 1000

    IO.puts(
      "#{what} run=#{run} calls=#{n} p50_us=#{Float.round(p50, 1)} p99_us=#{Float.round(p99, 1)} " <>
        "mean_us=#{Float.round(mean, 1)}"
    )
  end

  defp fire_and_forget(target, count, size, runs) do
    dest = {Chat, target}
    message = :binary.copy("x", size)

    for run <- 1..runs do
      base = GenServer.call(dest, :count, :infinity)
      t0 = System.monotonic_time(:nanosecond)
      send_loop(dest, message, count)
      t1 = System.monotonic_time(:nanosecond)
      counted = GenServer.call(dest, :count, :infinity) - base
      t2 = System.monotonic_time(:nanosecond)
      send_s = (t1 - t0) / 1.0e9
      total_s = (t2 - t0) / 1.0e9

      IO.puts(
        "ff run=#{run} count=#{count} size=#{size} send_s=#{Float.round(send_s, 4)} " <>
          "total_s=#{Float.round(total_s, 4)} msgs_per_s=#{round(count / total_s)} counted=#{counted}"
      )
    end
  end

  defp send_loop(_dest, _message, 0), do: :ok

  defp send_loop(dest, message, n) do
    send(dest, message)
    send_loop(dest, message, n - 1)
  end
end

Bench.Client.main(System.argv())
