# Runs rows of issue 17's table against one target and prints one line per row. scripts/bench
# (scripts/lib/bench-hostile.sh) runs it once per target and group of rows:
#
#   elixir --name driver@127.0.0.1 --cookie C bench/hostile/main.exs \
#     --target NAME@HOST --os-pid PID [--http-port P] [--token T] --rows a,b,c [--smoke]
#
# For each row: a fresh attacker node runs the attack while this node probes the target
# (Hostile.Probe) and samples its RSS (Hostile.Rss); then the attacker leaves, RSS settles and
# the probe stops. Output:
#
#   hostile row=ID served=N failed=N max_ms=N p99_ms=N base_kb=N peak_kb=N after_kb=N [row-specific k=v ...]
#
# The row "stdout" also sends SIGTERM at the end and reports sigterm_ms (the target must have
# been started with a stdout nobody reads).
[{_, _} | _] = mods = Code.compile_file(Path.join(__DIR__, "attacks.exs"))
:persistent_term.put(:hostile_modules, mods)

defmodule Hostile.Main do
  @rows ~w(open_relay made_up_posts sse_posts idle_events nil_bomb spawn_io spawn_io_hole made_up
           monitors tasks monitors_kept links kill_sup stdout)

  def main(argv) do
    {opts, _, _} =
      OptionParser.parse(argv,
        strict: [target: :string, os_pid: :integer, http_port: :integer, token: :string, rows: :string, smoke: :boolean]
      )

    target = String.to_atom(opts[:target])
    rows = String.split(opts[:rows], ",", trim: true)
    Enum.each(rows, fn r -> r in @rows || raise("unknown row #{r}; rows: #{Enum.join(@rows, ", ")}") end)
    ctx = %{
      target: target,
      os_pid: opts[:os_pid],
      http: opts[:http_port],
      headers: if(opts[:token], do: [{"Authorization", "Bearer " <> opts[:token]}], else: []),
      smoke: Keyword.get(opts, :smoke, false),
      cookie: Atom.to_string(Node.get_cookie())
    }

    wait_ready(target, System.monotonic_time(:millisecond) + 60_000)
    Enum.each(rows, &measure(&1, ctx))
  end

  defp wait_ready(target, deadline) do
    try do
      GenServer.call({Chat, target}, :count, 1_000)
    catch
      :exit, reason ->
        if System.monotonic_time(:millisecond) > deadline, do: raise("#{target} never answered: #{inspect(reason)}")
        Process.sleep(50)
        wait_ready(target, deadline)
    end
  end

  defp size(ctx, full, smoke), do: if(ctx.smoke, do: smoke, else: full)

  defp measure(row, ctx) do
    base = Hostile.Rss.kb(ctx.os_pid)
    rss = Hostile.Rss.start(ctx.os_pid)
    probe = Hostile.Probe.start(ctx.target, http_port: ctx.http)
    attacker = Hostile.Attacker.start(ctx.cookie)
    {run0, wait0} = Hostile.Sched.ms(ctx.os_pid)
    loop0 = loop_stats(ctx)
    result = attack(row, attacker, ctx)
    {run1, wait1} = Hostile.Sched.ms(ctx.os_pid)
    result = Map.merge(result, %{cpu_ms: run1 - run0, cpu_wait_ms: wait1 - wait0}) |> Map.merge(loop_delta(loop0, loop_stats(ctx)))
    Hostile.Attacker.stop(attacker)
    after_kb =
      Hostile.Rss.settled(ctx.os_pid,
        if(ctx.smoke, do: [min_ms: 3_000, quiet_ms: 1_000, max_ms: 15_000], else: [min_ms: 10_000, quiet_ms: 3_000])
      )
    stats = Hostile.Probe.stop(probe)
    peak = Hostile.Rss.stop(rss)
    extra = if row == "stdout", do: Map.put(result, :sigterm_ms, sigterm(ctx.os_pid)), else: result

    fields =
      [served: stats.served, failed: stats.failed, max_ms: stats.max_ms, p99_ms: stats.p99_ms, base_kb: base, peak_kb: peak, after_kb: after_kb] ++
        Enum.map(extra, fn {k, v} -> {k, v} end)

    line = Enum.map_join(fields, " ", fn {k, v} -> "#{k}=#{value(v)}" end)
    IO.puts("hostile row=#{row} #{line}")
    if stats.errors != [], do: IO.puts(:stderr, "hostile row=#{row} probe errors: #{inspect(stats.errors)}")
  end

  # A chat-node's own count of its long loop turns (/status.json "loop"); nothing for a target
  # that does not keep one.
  defp loop_stats(%{http: nil}), do: nil

  defp loop_stats(ctx) do
    case Hostile.Http.get(ctx.http, "/status.json", 5_000, ctx.headers) do
      {200, body} ->
        case Regex.run(~r/"turns_over_1ms":(\d+),"turns_over_10ms":(\d+)/, body) do
          [_, over1, over10] -> {String.to_integer(over1), String.to_integer(over10)}
          _ -> nil
        end

      _ ->
        nil
    end
  end

  defp loop_delta({a1, a10}, {b1, b10}), do: %{loop_turns_over_1ms: b1 - a1, loop_turns_over_10ms: b10 - a10}
  defp loop_delta(_, _), do: %{}

  # One word per value, so that the shell can cut the line at spaces.
  defp value(v) when is_integer(v) or is_atom(v), do: to_string(v)
  defp value(v) when is_binary(v), do: String.replace(v, ~r/\s+/, "_")
  defp value(v) when is_map(v), do: v |> Enum.map_join("/", fn {k, n} -> "#{k}:#{n}" end)
  defp value(v), do: v |> inspect() |> String.replace(~r/\s+/, "")

  defp attack(row, a, ctx) do
    t = ctx.target
    run = fn fun, args -> Hostile.Attacker.run(a, fun, args, 600_000) end

    case row do
      "open_relay" -> run.(:open_relay, [ctx.http, "relay@10.255.255.1", ctx.headers])
      "made_up_posts" -> run.(:made_up_posts, [ctx.http, size(ctx, 10_000, 200), ctx.headers])
      "sse_posts" -> run.(:sse_stalled_posts, [ctx.http, size(ctx, 20, 5), size(ctx, 1_000, 100), t, ctx.headers])
      "idle_events" -> run.(:idle_events, [ctx.http, size(ctx, 19_990, 300)])
      "nil_bomb" -> run.(:nil_bomb, [t, size(ctx, 16_000_000, 2_000_000)])
      "spawn_io" -> run.(:spawn_io_hold, [t, size(ctx, 399, 10), size(ctx, 8_388_608, 1_048_576), :attacker])
      "spawn_io_hole" -> run.(:spawn_io_hold, [t, size(ctx, 399, 10), size(ctx, 8_388_608, 1_048_576), :hole])
      "made_up" -> run.(:made_up_calls, [t, size(ctx, 30_000, 300)])
      "monitors" -> run.(:monitors_churn, [t, size(ctx, 30_000, 500)])
      "tasks" -> run.(:tasks_burst, [t, size(ctx, 50_000, 500)])
      "monitors_kept" -> run.(:monitors_kept, [t, size(ctx, 1_000_000, 5_000)])
      "links" -> run.(:links, [t, size(ctx, 100_000, 1_000)])
      "kill_sup" -> run.(:kill_task_supervisor, [t])
      "stdout" -> run.(:flood_chat, [t, size(ctx, 40_000, 4_000), 1_000, size(ctx, 10_000, 5_000)])
    end
    |> case do
      m when is_map(m) -> m
      other -> %{error: other}
    end
  end

  # SIGTERM to the target, and the time until its process is gone (polled in /proc).
  defp sigterm(os_pid) do
    t0 = System.monotonic_time(:millisecond)
    System.cmd("kill", ["-TERM", Integer.to_string(os_pid)])
    wait_gone(os_pid, t0, t0 + 30_000)
  end

  defp wait_gone(os_pid, t0, deadline) do
    now = System.monotonic_time(:millisecond)

    cond do
      not File.exists?("/proc/#{os_pid}/status") or zombie?(os_pid) -> now - t0
      now > deadline -> :timeout
      true -> Process.sleep(10) && wait_gone(os_pid, t0, deadline)
    end
  end

  defp zombie?(os_pid) do
    case File.read("/proc/#{os_pid}/status") do
      {:ok, s} -> s =~ ~r/State:\s+Z/
      _ -> true
    end
  end
end

Hostile.Main.main(System.argv())
