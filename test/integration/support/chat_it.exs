# Helpers for the integration tests. test/integration/run.sh loads this file
# (elixir -r) before the test file, in a VM that runs as amanda@127.0.0.1 with
# a private EPMD (ERL_EPMD_PORT) and a random cookie.
#
# The test VM plays "amanda", the person at the iex prompt: it runs the seed
# Chat application from elixir_peer, so it has a Chat.TaskSupervisor that
# remote nodes (e.g. a moebi answering "chicken?") can run tasks on.
#
# Nothing here sleeps for a fixed time: waiting is always for an event (a line
# printed by a node, a process exit) or a polled condition with a deadline.

ExUnit.start(trace: true, timeout: 120_000)

IO.puts(
  "== test VM #{node()}: Elixir #{System.version()}, OTP #{System.otp_release()} " <>
    "(erts #{:erlang.system_info(:version)})"
)

case Application.ensure_all_started(:chat) do
  {:ok, _} -> :ok
  other -> raise "the test VM could not start the elixir_peer :chat app: #{inspect(other)}"
end

# Unlinked tasks for ChatIT.within/3 (a crash must not take the test down
# before it can be reported).
{:ok, tasks} = Task.Supervisor.start_link(name: ChatIT.Tasks)
Process.unlink(tasks)

# ChatIT.OsProc: the OS processes a test starts (nodes, CLI runs), with their output.
Code.require_file("os_proc.exs", __DIR__)

defmodule ChatIT.Peer do
  @moduledoc "A node started by a test: a C++ chat-node or an Elixir VM."
  defstruct [:name, :kind, :proc, :os_pid, :label, :cookie]
end

defmodule ChatIT do
  @moduledoc "What the integration tests use: start nodes, run the CLI, wait."
  import ExUnit.Assertions
  alias ChatIT.{OsProc, Peer}

  @host "127.0.0.1"

  # -- names -------------------------------------------------------------------

  @doc "Node name `base@127.0.0.1`."
  def name(base), do: :"#{base}@#{@host}"

  @doc "A node name no other node of this run uses, e.g. :\"kate17@127.0.0.1\"."
  def unique(base), do: name("#{base}#{System.unique_integer([:positive])}")

  @doc "The moebi name. EPMD allows one at a time: stop it before starting another."
  def moebi, do: name("moebi")

  def cookie, do: Atom.to_string(Node.get_cookie())

  def chat_node_exe, do: env!("CHAT_NODE")

  defp env!(var) do
    System.get_env(var) || raise "environment variable #{var} is not set (use run.sh)"
  end

  # -- starting nodes -------------------------------------------------------------

  @doc """
  Starts build/chat-node as a server node and waits until it prints
  `Node name: NAME`. Options: `cookie:` (`:from_env` passes it in
  ERLANG_COOKIE instead of --cookie), `args:` (extra arguments), `env:`
  (extra environment, a list of {name, value}), `ready_timeout:` (ms). The node is stopped when the test (or the module,
  if called from setup_all) ends.
  """
  def start_cpp(name, opts \\ []) do
    level = System.get_env("IT_CPP_LOG_LEVEL", "info")

    {cookie, cookie_args, env} =
      case Keyword.get(opts, :cookie, cookie()) do
        :from_env -> {cookie(), [], [{"ERLANG_COOKIE", cookie()}]}
        c -> {c, ["--cookie", c], []}
      end

    args =
      ["--name", Atom.to_string(name)] ++
        cookie_args ++ ["--log-level", level] ++ tls_args(:cpp, opts) ++ Keyword.get(opts, :args, [])

    opts = Keyword.update(opts, :env, env, &(env ++ &1))
    start_os_node(name, :cpp, cookie, chat_node_exe(), args, "Node name: #{name}", opts)
  end

  @doc """
  Starts a real Elixir node running the seed Chat app from elixir_peer
  (`variant: :seed`, the default) or the lesson variant from
  test/lesson_chat (`variant: :lesson`), and waits until the app is up.

  `runtime: :otp27` (or `:otp29`, ...) starts it with another Erlang/Elixir
  of the mixed-OTP tests instead of this VM's own: the executable in
  IT_OTP27_ELIXIR (a wrapper that runs `elixir` of the OTP 27 root) and the
  apps compiled for it in IT_OTP27_PEER_EBIN / IT_OTP27_LESSON_EBIN. By
  default the node runs the `elixir` of $ELIXIR (or PATH), like this VM.
  `erl: "FLAGS"` passes FLAGS to its erl (`elixir --erl`).
  """
  def start_elixir(name, opts \\ []) do
    cookie = Keyword.get(opts, :cookie, cookie())
    variant = Keyword.get(opts, :variant, :seed)

    {elixir, peer_ebin_var, lesson_ebin_var} =
      case Keyword.get(opts, :runtime, :default) do
        :default ->
          exe = System.get_env("ELIXIR", "elixir")

          {System.find_executable(exe) || raise("elixir not found: #{exe}"), "ELIXIR_PEER_EBIN",
           "LESSON_EBIN"}

        runtime when is_atom(runtime) ->
          prefix = "IT_" <> String.upcase(Atom.to_string(runtime))
          {env!(prefix <> "_ELIXIR"), prefix <> "_PEER_EBIN", prefix <> "_LESSON_EBIN"}
      end

    {ebin, app} =
      case variant do
        :seed -> {env!(peer_ebin_var), :chat}
        :lesson -> {env!(lesson_ebin_var), :lesson_chat}
      end

    code = """
    case Application.ensure_all_started(#{inspect(app)}) do
      {:ok, _} ->
        IO.puts("IT-READY")
        Process.sleep(:infinity)

      other ->
        IO.puts("IT-FAILED " <> inspect(other))
        System.halt(3)
    end
    """

    # TLS flags (tls_args) and the test's own (erl:) go to the VM as one --erl string.
    erl =
      case tls_args(:beam, opts) ++ List.wrap(opts[:erl]) do
        [] -> []
        flags -> ["--erl", flags |> Enum.reject(&(&1 == "--erl")) |> Enum.join(" ")]
      end

    args =
      ["--name", Atom.to_string(name), "--cookie", cookie] ++ erl ++ ["-pa", ebin, "-e", code]

    start_os_node(name, variant, cookie, elixir, args, "IT-READY", opts)
  end

  defp start_os_node(name, kind, cookie, exe, args, ready_line, opts) do
    label = name |> Atom.to_string() |> String.split("@") |> hd()
    {:ok, proc} = OsProc.start(label, exe, args, Keyword.get(opts, :env, []))

    peer = %Peer{
      name: name,
      kind: kind,
      proc: proc,
      os_pid: OsProc.os_pid(proc),
      label: label,
      cookie: cookie
    }

    ExUnit.Callbacks.on_exit(fn -> stop(peer) end)

    case OsProc.await_line(proc, ready_line, Keyword.get(opts, :ready_timeout, 20_000)) do
      :ok ->
        peer

      {:error, why} ->
        flunk("#{label} (#{kind}) did not become ready: #{inspect(why)}\n" <> describe(peer))
    end
  end

  @doc """
  Stops a node (TERM, then KILL), then waits until EPMD has forgotten its name
  and this VM has dropped its connection, so the name can be reused at once.
  Never fails: it runs in on_exit.
  """
  def stop(%Peer{} = p) do
    if Process.alive?(p.proc) do
      case OsProc.stop(p.proc) do
        0 -> :ok
        other -> IO.puts("[#{p.label}] note: stop gave #{inspect(other)}")
      end
    end

    Node.disconnect(p.name)

    ok? = poll(fn -> not registered?(p.name) and p.name not in Node.list() end, 5_000)

    unless ok?, do: IO.puts("[#{p.label}] warning: still registered or connected after stop")
    :ok
  end

  # -- output of nodes ------------------------------------------------------------

  def lines(%Peer{proc: proc}), do: OsProc.lines(proc)

  def count(%Peer{} = p, line), do: Enum.count(lines(p), &(&1 == line))

  @doc "Asserts that `peer` prints the line (exact match, or a predicate) within `timeout` ms."
  def assert_prints(%Peer{} = p, want, timeout \\ 10_000) do
    case OsProc.await_line(p.proc, want, timeout) do
      :ok ->
        :ok

      {:error, why} ->
        flunk("#{p.label} did not print #{inspect(want)} (#{inspect(why)})\n" <> describe(p))
    end
  end

  @doc """
  Makes sure everything `peer` printed so far has reached us: sends a unique
  marker with Chat.send_message and waits until it is printed (a node's stdout
  is one ordered stream).
  """
  def barrier(%Peer{} = p) do
    marker = "it-barrier-#{System.unique_integer([:positive])}"
    assert Chat.send_message(p.name, marker) == nil
    assert_prints(p, marker)
  end

  @doc """
  barrier/1 for an Elixir node whose Chat differs from ours (the lesson
  variant): the marker is written to the node's own stdout over :rpc.
  """
  def barrier_rpc(%Peer{} = p) do
    marker = "it-barrier-#{System.unique_integer([:positive])}"
    assert :rpc.call(p.name, :io, :put_chars, [:user, marker <> "\n"], 10_000) == :ok
    assert_prints(p, marker)
  end

  @doc "Text describing a node's stdout and stderr, for failure messages."
  def describe(%Peer{} = p) do
    out = if Process.alive?(p.proc), do: OsProc.lines(p.proc), else: []

    err =
      if Process.alive?(p.proc) do
        case File.read(OsProc.stderr_path(p.proc)) do
          {:ok, text} -> text |> String.split("\n") |> Enum.take(-40) |> Enum.join("\n")
          _ -> ""
        end
      else
        ""
      end

    "--- #{p.label} stdout ---\n#{Enum.join(out, "\n")}\n--- #{p.label} stderr (tail) ---\n#{err}"
  end

  # -- OS process control --------------------------------------------------------------

  def signal(%Peer{proc: proc}, sig), do: OsProc.signal(proc, sig)

  @doc "Waits for the node's OS process to exit: {:ok, status} or :timeout."
  def await_exit(%Peer{proc: proc}, timeout \\ 10_000), do: OsProc.await_exit(proc, timeout)

  # -- the chat-node command line client -----------------------------------------------

  @doc """
  Runs `chat-node ARGS...` to completion and returns
  %{status: integer | :timeout, stdout: [lines], stderr: text, ms: elapsed}.
  A run that outlives `timeout:` (default 20 s) is killed.
  """
  def cli(args, opts \\ []) do
    timeout = Keyword.get(opts, :timeout, 20_000)
    label = Keyword.get(opts, :label, "cli")
    t0 = System.monotonic_time(:millisecond)
    {:ok, proc} = OsProc.start(label, chat_node_exe(), args)

    status =
      case OsProc.await_exit(proc, timeout) do
        {:ok, s} -> s
        :timeout -> :timeout
      end

    ms = System.monotonic_time(:millisecond) - t0
    stdout = OsProc.lines(proc)
    stderr = File.read!(OsProc.stderr_path(proc))
    OsProc.stop(proc)
    %{status: status, stdout: stdout, stderr: stderr, ms: ms}
  end

  @doc "Common options of a CLI run: a fresh client node name and the cookie."
  def cli_opts(opts \\ []) do
    name = Keyword.get_lazy(opts, :name, fn -> unique("cli") end)
    cookie = Keyword.get(opts, :cookie, cookie())
    level = Keyword.get(opts, :log_level, System.get_env("IT_CLI_LOG_LEVEL", "warn"))
    ["--name", Atom.to_string(name), "--cookie", cookie, "--log-level", level] ++ tls_args(:cpp, opts)
  end

  # -- TLS distribution (files with the line "# it: tls"; see run.sh) ------------------------

  @doc "The optfile every node of a TLS test uses by default, or nil outside TLS tests."
  def tls_optfile, do: System.get_env("IT_TLS_OPTFILE")

  @doc "The directory with the test's CA (ca/) and node certificate (node/)."
  def tls_dir, do: System.get_env("IT_TLS_DIR") || raise("not a TLS test (no IT_TLS_DIR)")

  # Arguments that put a node on TLS: `tls: false` keeps it on plain TCP, `tls: PATH` gives
  # it another optfile, and by default it uses the test's.
  defp tls_args(kind, opts) do
    case Keyword.get(opts, :tls, tls_optfile()) do
      nil -> []
      false -> []
      file when kind == :cpp -> ["--ssl-dist-optfile", file]
      file -> ["--erl", "-proto_dist inet_tls -ssl_dist_optfile #{file}"]
    end
  end

  @doc """
  Runs `chat-node tls-cert HOST --out DIR` with extra `args` (e.g. `--ca`, `--days`,
  `--backdate-days`) and returns DIR's optfile. `ca:` is the CA directory (default: the test's).
  """
  def tls_cert(dir_name, args \\ [], opts \\ []) do
    out = Path.join(tls_dir(), dir_name)
    ca = Keyword.get(opts, :ca, Path.join(tls_dir(), "ca"))
    host = Keyword.get(opts, :host, "127.0.0.1")
    {text, 0} = System.cmd(chat_node_exe(), ["tls-cert", host, "--ca", ca, "--out", out | args], stderr_to_stdout: true)
    assert text =~ "-ssl_dist_optfile"
    Path.join(out, "ssl_dist.conf")
  end

  @doc "Runs `chat-node tls-ca --out DIR` (a CA nobody in the test trusts) and returns DIR."
  def tls_other_ca(dir_name) do
    out = Path.join(tls_dir(), dir_name)
    {_, 0} = System.cmd(chat_node_exe(), ["tls-ca", "--out", out], stderr_to_stdout: true)
    out
  end

  @doc "The node's stderr so far (its log)."
  def log(%Peer{proc: proc}) do
    case File.read(OsProc.stderr_path(proc)) do
      {:ok, text} -> text
      _ -> ""
    end
  end

  @doc "`chat-node send TARGET MESSAGE ...`"
  def cli_send(target, message, opts \\ []) do
    cli(["send", Atom.to_string(target), message | cli_opts(opts)], opts)
  end

  @doc "`chat-node ping TARGET ...`"
  def cli_ping(target, opts \\ []) do
    cli(["ping", Atom.to_string(target) | cli_opts(opts)], opts)
  end

  # -- the test VM's own output ------------------------------------------------------

  @doc """
  Runs `fun` while the output of this VM's chat processes (tasks run under
  Chat.TaskSupervisor, and the Chat inbox) goes to a buffer instead of the
  terminal. Returns {result, captured_text}. This is how a test sees what
  "amanda" would have seen printed in her iex, e.g. a moebi's "chicken?".
  """
  def capture_chat_output(fun) do
    {:ok, buffer} = StringIO.open("")

    swapped =
      for name <- [Chat.TaskSupervisor, Chat], pid = Process.whereis(name), pid != nil do
        {:group_leader, old} = Process.info(pid, :group_leader)
        Process.group_leader(pid, buffer)
        {pid, old}
      end

    try do
      result = fun.()
      {_input, text} = StringIO.contents(buffer)
      {result, text}
    after
      Enum.each(swapped, fn {pid, old} -> Process.group_leader(pid, old) end)
      StringIO.close(buffer)
    end
  end

  # -- cluster shape (global, pg) ------------------------------------------------------

  @doc ":rpc.call/5 with a deadline; works on C++ and Elixir nodes alike."
  def rpc(node, m, f, a, timeout \\ 10_000), do: :rpc.call(node, m, f, a, timeout)

  @doc "Makes `a` connect to `b` (Node.connect/1 run on `a`), as a user would from a's shell."
  def connect(a, b) do
    assert rpc(a, Node, :connect, [b]) == true, "#{a} could not connect to #{b}"
  end

  @doc "The visible nodes `node` is connected to, sorted."
  def nodes_of(node) do
    case rpc(node, :erlang, :nodes, []) do
      list when is_list(list) -> Enum.sort(list)
      other -> other
    end
  end

  @doc "Waits until every node in `names` is connected to every other one (visible)."
  def wait_mesh(names, timeout \\ 15_000) do
    wait_until(
      fn ->
        Enum.all?(names, fn n ->
          others = Enum.sort(names -- [n])
          Enum.all?(others, &(&1 in List.wrap(nodes_of(n))))
        end)
      end,
      timeout,
      "a full mesh of #{inspect(names)}"
    )
  end

  @doc "`:global.sync()` run on `node`, within `timeout` ms (it used to hang forever)."
  def global_sync(node, timeout \\ 10_000) do
    within(timeout, ":global.sync() on #{node}", fn -> rpc(node, :global, :sync, [], timeout) end)
  end

  # -- EPMD and waiting ---------------------------------------------------------------

  @doc "Names registered with our private EPMD, as strings."
  def epmd_names do
    case :erl_epmd.names({127, 0, 0, 1}) do
      {:ok, names} -> Enum.map(names, fn {n, _port} -> List.to_string(n) end)
      {:error, _} -> []
    end
  end

  def registered?(node_name) do
    short = node_name |> Atom.to_string() |> String.split("@") |> hd()
    short in epmd_names()
  end

  @doc "The distribution listen port EPMD has for a node."
  def dist_port(node_name) do
    short = node_name |> Atom.to_string() |> String.split("@") |> hd()
    {:port, port, _version} = :erl_epmd.port_please(String.to_charlist(short), {127, 0, 0, 1})
    port
  end

  @doc "A TCP port on 127.0.0.1 that nothing listens on (for a node's --port)."
  def free_port do
    {:ok, l} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(l)
    :gen_tcp.close(l)
    port
  end

  @doc """
  A C++ node's own counters from its /status.json on `port`: processes,
  links, monitors and inbox (no JSON library here: no Hex).
  """
  def node_counters(port) do
    {:ok, _} = Application.ensure_all_started(:inets)
    url = ~c"http://127.0.0.1:#{port}/status.json"
    {:ok, {{_, 200, _}, _, body}} = :httpc.request(:get, {url, []}, [timeout: 5_000], [])
    text = List.to_string(body)

    for key <- ~w(processes links monitors inbox), into: %{} do
      [_, v] = Regex.run(~r/"#{key}":(\d+)/, text)
      {String.to_atom(key), String.to_integer(v)}
    end
  end

  @doc """
  Polls `fun` until it returns a truthy value, which is returned; fails the
  test after `timeout` ms.
  """
  def wait_until(fun, timeout \\ 10_000, what \\ "condition") do
    case poll(fun, timeout) do
      false -> flunk("timed out after #{timeout} ms waiting for #{what}")
      value -> value
    end
  end

  defp poll(fun, timeout) do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_poll(fun, deadline)
  end

  defp do_poll(fun, deadline) do
    case fun.() do
      result when result in [nil, false] ->
        if System.monotonic_time(:millisecond) >= deadline do
          false
        else
          Process.sleep(25)
          do_poll(fun, deadline)
        end

      value ->
        value
    end
  end

  @doc """
  Runs `fun` in a separate process and returns its result, or fails the test
  if it takes longer than `timeout` ms (the process is killed).
  """
  def within(timeout, what, fun) do
    task = Task.Supervisor.async_nolink(ChatIT.Tasks, fun)

    case Task.yield(task, timeout) || Task.shutdown(task, :brutal_kill) do
      {:ok, value} -> value
      {:exit, reason} -> flunk("#{what} crashed: #{inspect(reason)}")
      nil -> flunk("#{what} took longer than #{timeout} ms")
    end
  end
end
