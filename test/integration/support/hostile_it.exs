# What the hostile tests (t21, t22, t23) share: issue 17's attacks, compiled from
# bench/hostile/attacks.exs (scripts/bench runs the same ones), and the way a test measures the
# node while one runs. A test file requires this before its module:
#
#   Code.require_file("support/hostile_it.exs", __DIR__)
mods = Code.compile_file(Path.expand("../../../bench/hostile/attacks.exs", __DIR__))
# Hostile.Attacker loads these into each attacker node.
:persistent_term.put(:hostile_modules, mods)

defmodule ChatIT.Hostile do
  import ExUnit.Assertions
  import ExUnit.Callbacks, only: [on_exit: 1]
  alias ChatIT.OsProc

  @doc "An attacker node of its own (Hostile.Attacker), stopped when the test ends."
  def attacker do
    a = Hostile.Attacker.start(ChatIT.cookie())
    on_exit(fn -> Hostile.Attacker.stop(a) end)
    a
  end

  @doc """
  Runs `attack` on an attacker node while probing `node` (GenServer.call :count, and GET
  /health with `http_port:`) and sampling its RSS; then lets the attacker go (after `then:`,
  a function of the attacker, if given) and memory settle (at least `settle_min_ms:`, 7 s by
  default). `tolerate:` is a predicate on the probe's failures that are expected. Checks the probe was served throughout and the node is still running. Returns
  {attack result, probe stats, %{base:, peak:, after:} RSS in kB}.
  """
  def measured(node, attack, opts \\ []) do
    base = Hostile.Rss.kb(node.os_pid)
    rss = Hostile.Rss.start(node.os_pid)
    probe = Hostile.Probe.start(node.name, Keyword.take(opts, [:http_port]))
    a = attacker()
    result = attack.(a)
    if then = opts[:then], do: then.(a)
    Hostile.Attacker.stop(a)
    min_ms = Keyword.get(opts, :settle_min_ms, 7_000)
    after_kb = Hostile.Rss.settled(node.os_pid, min_ms: min_ms, quiet_ms: 1_500, max_ms: min_ms + 13_000)
    stats = Hostile.Probe.stop(probe)
    peak = Hostile.Rss.stop(rss)

    IO.puts(
      "  probe: #{stats.served} served, #{stats.failed} failed, slowest #{stats.max_ms} ms; " <>
        "RSS #{base} -> #{peak} -> #{after_kb} kB; #{inspect(result)}"
    )

    # `tolerate:` names the failures a BEAM would give as well (a call in flight to a process
    # the attack takes down); the probe keeps the last 5 errors, so at most 5 are tolerated.
    tolerated = Keyword.get(opts, :tolerate, fn _ -> false end)

    assert stats.failed == 0 or
             (stats.failed <= length(stats.errors) and Enum.all?(stats.errors, tolerated)),
           "the node stopped answering: #{inspect(stats.errors)}\n" <> ChatIT.describe(node)

    assert stats.served >= 5
    assert OsProc.status(node.proc) == nil, "the node exited:\n" <> ChatIT.describe(node)
    {result, stats, %{base: base, peak: peak, after: after_kb}}
  end

  def log_of(node), do: File.read!(OsProc.stderr_path(node.proc))

  @doc """
  Whether the chat-node under test is the ASan build (its quarantine keeps what is freed, so
  memory coming back is judged in the plain build). Inside an OTP root CHAT_NODE is a
  wrapper, so the host binary's path (IT_HOST_CHAT_NODE) decides.
  """
  def asan_build? do
    String.contains?(System.get_env("IT_HOST_CHAT_NODE") || ChatIT.chat_node_exe(), "asan")
  end

  def mb(n), do: n * 1024

  @doc "Whether {Chat, name} answers a GenServer.call within a second."
  def answers?(name) do
    is_integer(GenServer.call({Chat, name}, :count, 1_000))
  catch
    :exit, _ -> false
  end
end
