# The attacks of issue 17 ("no hostile or heavy peer may stall the loop or grow memory without
# bound"), as functions that scripts/bench (through bench/hostile/main.exs) and the
# integration tests (t21_hostile_http, t22_hostile_load) share. A row is measured the same way
# against a C++ node and against elixir_peer:
#
#   - the attack runs on an attacker node of its own (Hostile.Attacker, a :peer started by the
#     measuring node, these modules loaded into it), so that the measuring node's connection
#     to the target is never the one the attack slows down;
#   - meanwhile Hostile.Probe, on the measuring node, calls the target every ~50 ms
#     (GenServer.call({Chat, target}, :count), and GET /health when it serves HTTP) and keeps
#     the slowest answer, how many were served and how many failed;
#   - Hostile.Rss samples the target's RSS (VmRSS of its OS process) every 20 ms: before,
#     peak, and after the attack (once it has settled).
#
# Nothing here asserts: the tests and the bench judge what comes back.

defmodule Hostile.Sched do
  @moduledoc """
  An OS process's time on a CPU and time runnable but waiting for one (ms), summed over its
  threads from the kernel's scheduler statistics (/proc/PID/task/TID/schedstat). The wait is
  what the rest of the machine cost the target: a probe's slow answer with much of it is the
  machine's, not the target's.
  """

  def ms(os_pid) do
    case File.ls("/proc/#{os_pid}/task") do
      {:ok, tids} ->
        Enum.reduce(tids, {0, 0}, fn tid, {run, wait} ->
          case File.read("/proc/#{os_pid}/task/#{tid}/schedstat") do
            {:ok, text} ->
              [r, w | _] = String.split(text)
              {run + String.to_integer(r), wait + String.to_integer(w)}

            {:error, _} ->
              {run, wait}
          end
        end)
        |> then(fn {r, w} -> {div(r, 1_000_000), div(w, 1_000_000)} end)

      {:error, _} ->
        {0, 0}
    end
  end
end

defmodule Hostile.Rss do
  @moduledoc "Samples an OS process's VmRSS (kB) until stopped; keeps the peak."

  def kb(os_pid) do
    case File.read("/proc/#{os_pid}/status") do
      {:ok, text} ->
        [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, text)
        String.to_integer(kb)

      {:error, _} ->
        0
    end
  end

  def start(os_pid) do
    parent = self()
    spawn_link(fn -> loop(os_pid, parent, kb(os_pid)) end)
  end

  def stop(sampler) do
    send(sampler, {:stop, self()})

    receive do
      {:rss_peak, ^sampler, peak} -> peak
    after
      5_000 -> 0
    end
  end

  defp loop(os_pid, parent, peak) do
    receive do
      {:stop, from} -> send(from, {:rss_peak, self(), peak})
    after
      20 -> loop(os_pid, parent, max(peak, kb(os_pid)))
    end
  end

  @doc """
  RSS once memory has settled: at least `min_ms` from now (a node may hold what a peer sent
  for a while by design, e.g. 5 s for an io_request), then until it has not fallen for
  `quiet_ms`, `max_ms` at most.
  """
  def settled(os_pid, opts \\ []) do
    now = System.monotonic_time(:millisecond)
    min_until = now + Keyword.get(opts, :min_ms, 10_000)
    deadline = now + Keyword.get(opts, :max_ms, 30_000)
    settle(os_pid, kb(os_pid), now, Keyword.get(opts, :quiet_ms, 3_000), min_until, deadline)
  end

  defp settle(os_pid, low, since, quiet_ms, min_until, deadline) do
    Process.sleep(100)
    now = System.monotonic_time(:millisecond)
    v = kb(os_pid)

    cond do
      now >= deadline -> min(v, low)
      v < low - 64 -> settle(os_pid, v, now, quiet_ms, min_until, deadline)
      now - since >= quiet_ms and now >= min_until -> min(v, low)
      true -> settle(os_pid, min(v, low), since, quiet_ms, min_until, deadline)
    end
  end
end

defmodule Hostile.Probe do
  @moduledoc """
  The second client: calls the target every `every` ms (default 50) from its own process,
  each call with its own deadline, and records served / failed / the slowest answer and the
  99th percentile (ms): one stall shows in the first, how often the loop stalls in the second.
  """

  def start(target, opts \\ []) do
    parent = self()
    every = Keyword.get(opts, :every, 50)
    http = Keyword.get(opts, :http_port)

    spawn(fn ->
      loop(target, http, every, parent, %{served: 0, failed: 0, max_ms: 0, times: [], errors: []})
    end)
  end

  def stop(probe) do
    send(probe, {:stop, self()})

    receive do
      {:probe, ^probe, stats} -> stats
    after
      30_000 -> %{served: 0, failed: 0, max_ms: :stuck, p99_ms: :stuck, errors: [:probe_stuck]}
    end
  end

  defp loop(target, http, every, parent, acc) do
    receive do
      {:stop, from} -> send(from, {:probe, self(), Map.put(acc, :p99_ms, p99(acc.times))})
    after
      every ->
        acc = call(acc, fn -> GenServer.call({Chat, target}, :count, 10_000) end, &is_integer/1)

        acc =
          if http,
            do:
              call(
                acc,
                fn -> Hostile.Http.get(http, "/health", 10_000) end,
                &match?({200, _}, &1)
              ),
            else: acc

        loop(target, http, every, parent, acc)
    end
  end

  defp p99([]), do: 0

  defp p99(times) do
    sorted = Enum.sort(times)
    Enum.at(sorted, min(length(sorted) - 1, div(length(sorted) * 99, 100)))
  end

  defp call(acc, fun, ok?) do
    t0 = System.monotonic_time(:microsecond)

    result =
      try do
        fun.()
      catch
        kind, reason -> {kind, reason}
      end

    ms = div(System.monotonic_time(:microsecond) - t0, 1000)
    acc = %{acc | max_ms: max(acc.max_ms, ms), times: [ms | acc.times]}

    if ok?.(result) do
      %{acc | served: acc.served + 1}
    else
      %{acc | failed: acc.failed + 1, errors: Enum.take([result | acc.errors], 5)}
    end
  end
end

defmodule Hostile.Http do
  @moduledoc "Just enough HTTP/1.1 over :gen_tcp (no Hex, no :httpc set-up)."

  def get(port, path, timeout, headers \\ []),
    do: request(port, "GET", path, "", timeout, headers)

  def post(port, path, body, timeout, headers \\ []),
    do:
      request(port, "POST", path, body, timeout, [{"Content-Type", "application/json"} | headers])

  def request(port, method, path, body, timeout, headers) do
    case :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false], timeout) do
      {:ok, sock} ->
        extra = Enum.map_join(headers, "", fn {k, v} -> "#{k}: #{v}\r\n" end)

        req =
          "#{method} #{path} HTTP/1.1\r\nHost: 127.0.0.1:#{port}\r\n#{extra}" <>
            "Content-Length: #{byte_size(body)}\r\nConnection: close\r\n\r\n#{body}"

        :ok = :gen_tcp.send(sock, req)
        response = read_all(sock, timeout, "")
        :gen_tcp.close(sock)
        parse(response)

      {:error, reason} ->
        {:error, reason}
    end
  end

  defp read_all(sock, timeout, acc) do
    case :gen_tcp.recv(sock, 0, timeout) do
      {:ok, data} -> read_all(sock, timeout, acc <> data)
      {:error, _} -> acc
    end
  end

  defp parse("HTTP/1.1 " <> <<status::binary-size(3), _::binary>> = response) do
    body =
      case String.split(response, "\r\n\r\n", parts: 2) do
        [_, b] -> b
        _ -> ""
      end

    {String.to_integer(status), body}
  end

  defp parse(other), do: {:error, {:no_answer, other}}

  @doc "A connection that sends `GET path` and then never reads: returns the socket."
  def stalled(port, path, timeout \\ 5_000) do
    case :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false, recbuf: 4096], timeout) do
      {:ok, sock} ->
        _ = :gen_tcp.send(sock, "GET #{path} HTTP/1.1\r\nHost: x\r\n\r\n")
        sock

      {:error, reason} ->
        {:error, reason}
    end
  end
end

defmodule Hostile.Attacker do
  @moduledoc """
  A node of its own for an attack: started with :peer by the measuring node, with the
  Hostile modules loaded into it. Stopped (it disconnects at once) with stop/1.
  """

  def start(cookie) do
    name = :"attacker#{System.unique_integer([:positive])}"
    # Elixir itself, and elixir_peer's Chat (Chat.send_message) when this node has it.
    paths =
      [:code.lib_dir(:elixir) |> Path.join("ebin"), :code.lib_dir(:logger) |> Path.join("ebin")] ++
        case :code.which(Chat) do
          path when is_list(path) -> [path |> List.to_string() |> Path.dirname()]
          _ -> []
        end

    {:ok, peer, node} =
      :peer.start(%{
        name: name,
        host: ~c"127.0.0.1",
        longnames: true,
        args:
          [~c"-setcookie", String.to_charlist(cookie), ~c"+P", ~c"4000000"] ++
            Enum.flat_map(paths, &[~c"-pa", String.to_charlist(&1)]),
        wait_boot: 60_000
      })

    {:ok, _} = :erpc.call(node, :application, :ensure_all_started, [:elixir])

    for {mod, bin} <- :persistent_term.get(:hostile_modules) do
      {:module, ^mod} = :erpc.call(node, :code, :load_binary, [mod, ~c"hostile/attacks.exs", bin])
    end

    {peer, node}
  end

  def stop({peer, _node}) do
    try do
      :peer.stop(peer)
    catch
      _, _ -> :ok
    end
  end

  @doc "Runs Hostile.Attacks.fun(args...) on the attacker node; its result, or {:error, ...}."
  def run({_peer, node}, fun, args, timeout) do
    try do
      :erpc.call(node, Hostile.Attacks, fun, args, timeout)
    catch
      kind, reason -> {:error, {kind, reason}}
    end
  end
end

defmodule Hostile.Attacks do
  @moduledoc """
  One function per row of issue 17's table; each runs on an attacker node (Hostile.Attacker)
  against `target` and returns a map of what it saw. Sizes are arguments so that the tests
  and `scripts/bench --smoke` can run small versions.
  """

  # -- finding the services' pids (a C++ node has no :erlang.whereis to call) ----------------

  @doc "The pid registered as `name` (Chat or Chat.TaskSupervisor) on `target`, or nil."
  def whereis(target, name) do
    case :rpc.call(target, :erlang, :whereis, [name], 5_000) do
      pid when is_pid(pid) -> pid
      _ -> guess(target, name)
    end
  end

  # Pids of a chat-node's services are small numbers with serial 0: ask each which it is.
  defp guess(target, name) do
    task =
      Task.Supervisor.async({Chat.TaskSupervisor, target}, Chat, :receive_message, [
        "whereis",
        node()
      ])

    _ = Task.yield(task, 5_000)

    <<131, 88, 119, l, _::binary-size(l), _num::32, _ser::32, creation::32>> =
      :erlang.term_to_binary(task.pid, minor_version: 2)

    n = Atom.to_string(target)

    Enum.find_value(1..32, fn num ->
      pid =
        :erlang.binary_to_term(
          <<131, 88, 119, byte_size(n), n::binary, num::32, 0::32, creation::32>>
        )

      request = if name == Chat, do: :count, else: :which_children

      try do
        case GenServer.call(pid, request, 300) do
          r when name == Chat and is_integer(r) -> pid
          r when name != Chat and is_list(r) -> pid
          _ -> nil
        end
      catch
        :exit, _ -> nil
      end
    end)
  end

  # -- the node layer's rows -------------------------------------------------------------------

  @doc "n monitors on {Chat, target}, then each demonitored."
  def monitors_churn(target, n) do
    t0 = now()
    refs = for _ <- 1..n, do: Process.monitor({Chat, target})
    Enum.each(refs, &Process.demonitor/1)
    # A round trip after the demonitors: they have all been handled by then.
    _ = safe(fn -> GenServer.call({Chat, target}, :count, 60_000) end)
    %{monitors: n, ms: now() - t0}
  end

  @doc "n processes linked to the Chat process; they stay until the attacker node leaves."
  def links(target, n) do
    case whereis(target, Chat) do
      nil ->
        %{error: :no_chat_pid}

      chat ->
        t0 = now()
        parent = self()

        for _ <- 1..n do
          spawn(fn ->
            Process.flag(:trap_exit, true)
            Process.link(chat)
            send(parent, :linked)
            receive do: (:never -> :ok)
          end)
        end

        for _ <- 1..n, do: receive(do: (:linked -> :ok))
        _ = safe(fn -> GenServer.call({Chat, target}, :count, 60_000) end)
        %{links: n, ms: now() - t0, chat: inspect(chat)}
    end
  end

  @doc "Kills Chat.TaskSupervisor, then calls Chat.send_message until it works (or 10 s)."
  def kill_task_supervisor(target) do
    case whereis(target, Chat.TaskSupervisor) do
      nil ->
        %{error: :no_supervisor_pid}

      sup ->
        Process.exit(sup, :kill)
        t0 = now()
        result = retry_send(target, t0 + 10_000)
        after_pid = whereis(target, Chat.TaskSupervisor)

        %{
          before: inspect(sup),
          after: inspect(after_pid),
          send_message: result,
          recovered_ms: now() - t0
        }
    end
  end

  defp retry_send(target, deadline) do
    case safe(fn -> Chat.send_message(target, "after the kill") end) do
      nil ->
        :ok

      other ->
        if now() > deadline do
          {:failed, other}
        else
          Process.sleep(100)
          retry_send(target, deadline)
        end
    end
  end

  @doc "n concurrent Task.Supervisor.async on the target, each awaited (60 s)."
  def tasks_burst(target, n) do
    # A remote task that dies abnormally takes its linked caller with it: count it, do not die.
    Process.flag(:trap_exit, true)
    t0 = now()

    results =
      1..n
      |> Task.async_stream(
        fn _ ->
          safe(fn ->
            Task.Supervisor.async({Chat.TaskSupervisor, target}, Chat, :receive_message, [
              "burst",
              node()
            ])
            |> Task.await(60_000)
          end)
        end,
        max_concurrency: n,
        timeout: 120_000,
        on_timeout: :kill_task
      )
      |> Enum.frequencies_by(fn
        {:ok, nil} -> :ok
        _ -> :failed
      end)

    %{
      tasks: n,
      completed: Map.get(results, :ok, 0),
      failed: Map.get(results, :failed, 0),
      ms: now() - t0
    }
  end

  @doc "n monitors on {Chat, target} held by one process until the attacker node leaves."
  def monitors_kept(target, n) do
    t0 = now()
    parent = self()

    spawn(fn ->
      for _ <- 1..n, do: Process.monitor({Chat, target})
      send(parent, :monitored)
      receive do: (:never -> :ok)
    end)

    receive do: (:monitored -> :ok)
    _ = safe(fn -> GenServer.call({Chat, target}, :count, 120_000) end)
    %{monitors: n, ms: now() - t0}
  end

  # -- stdout, decoding, what is held for peers --------------------------------------------

  @doc "n messages of `size` bytes to {Chat, target}, from one process; waits up to wait_ms."
  def flood_chat(target, n, size, wait_ms) do
    parent = self()
    payload = :binary.copy("f", size)
    t0 = now()

    sender =
      spawn(fn ->
        for i <- 1..n, do: send({Chat, target}, payload <> Integer.to_string(i))
        send(parent, {:flooded, self()})
      end)

    sent_all =
      receive do
        {:flooded, ^sender} -> true
      after
        wait_ms -> false
      end

    %{messages: n, size: size, sent_all: sent_all, ms: now() - t0}
  end

  @doc "One frame holding a list of n [] sent to a name nobody holds on the target."
  def nil_bomb(target, n) do
    bomb = List.duplicate([], n)
    true = Node.monitor(target, true)
    t0 = now()
    send({:nobody, target}, bomb)
    _ = safe(fn -> GenServer.call({Chat, target}, :count, 60_000) end)
    # The target either took it (a BEAM: some hundreds of MB) or dropped the connection.
    connection =
      receive do
        {:nodedown, ^target} -> :dropped
      after
        0 -> :kept
      end

    %{elements: n, ms: now() - t0, connection: connection}
  end

  @doc """
  n Node.spawn(target, Chat, :receive_message, [<<size bytes>>]) from a process whose group
  leader never answers: on this node (`:attacker`, the issue's row), or on a node registered
  with EPMD that never completes a handshake (`:hole`: the target queues its io_requests for a
  connection that stays in its handshake).
  """
  def spawn_io_hold(target, n, size, where) do
    gl =
      case where do
        :attacker -> spawn(fn -> receive do: (:never -> :ok) end)
        :hole -> hole_pid()
      end

    big = :binary.copy("s", size)
    parent = self()
    t0 = now()

    spawn(fn ->
      Process.group_leader(self(), gl)
      for _ <- 1..n, do: Node.spawn(target, Chat, :receive_message, [big])
      send(parent, :spawned)
    end)

    receive do: (:spawned -> :ok)
    _ = safe(fn -> GenServer.call({Chat, target}, :count, 60_000) end)
    %{spawns: n, size: size, where: where, ms: now() - t0}
  end

  # A node name registered with EPMD whose port accepts connections and never answers: a
  # pid there is a group leader the target can only queue for. The sockets stay open with
  # the process that opened them (the attacker's).
  defp hole_pid do
    parent = self()

    spawn(fn ->
      {:ok, listen} = :gen_tcp.listen(0, [:binary, active: false, backlog: 1024])
      {:ok, port} = :inet.port(listen)
      name = "hole#{System.unique_integer([:positive])}"
      epmd_port = String.to_integer(System.get_env("ERL_EPMD_PORT") || "4369")
      {:ok, epmd} = :gen_tcp.connect({127, 0, 0, 1}, epmd_port, [:binary, active: false])
      # ALIVE2_REQ (with its 2-byte length): port, normal node, tcp, versions 6..6, name, no
      # extra. The answer has no length: ALIVE2_X_RESP (OTP 23+) or ALIVE2_RESP.
      req = <<120, port::16, 77, 0, 6::16, 6::16, byte_size(name)::16, name::binary, 0::16>>
      :ok = :gen_tcp.send(epmd, <<byte_size(req)::16, req::binary>>)
      {:ok, reply} = :gen_tcp.recv(epmd, 0, 5_000)

      creation =
        case reply do
          <<118, 0, c::32>> -> c
          <<121, 0, c::16>> -> c
        end

      node = "#{name}@127.0.0.1"

      pid =
        :erlang.binary_to_term(
          <<131, 88, 119, byte_size(node), node::binary, 1::32, 0::32, creation::32>>
        )

      send(parent, {:hole, pid})
      accept_forever(listen, [epmd])
    end)

    receive do
      {:hole, pid} -> pid
    after
      10_000 -> raise "the hole node could not register with EPMD"
    end
  end

  defp accept_forever(listen, held) do
    case :gen_tcp.accept(listen) do
      {:ok, sock} -> accept_forever(listen, [sock | held])
      _ -> receive do: (:never -> held)
    end
  end

  @doc "n concurrent calls asking the target to Chat.send_message to made-up nodes."
  def made_up_calls(target, n) do
    t0 = now()
    tag = System.unique_integer([:positive])

    outcomes =
      1..n
      |> Task.async_stream(
        fn i ->
          safe(fn ->
            :erpc.call(target, Chat, :send_message, [:"madeup#{tag}x#{i}@127.0.0.1", "x"], 60_000)
          end)
        end,
        max_concurrency: min(n, 5_000),
        timeout: 120_000,
        on_timeout: :kill_task
      )
      |> Enum.count(fn {status, _} -> status == :ok end)

    %{calls: n, answered: outcomes, ms: now() - t0}
  end

  # -- HTTP ------------------------------------------------------------------------------------

  @doc "n POST /messages naming made-up nodes; counts the answers by status."
  def made_up_posts(port, n, headers \\ []) do
    t0 = now()
    tag = System.unique_integer([:positive])

    statuses =
      1..n
      |> Task.async_stream(
        fn i ->
          body = ~s({"to": "madeup#{tag}x#{i}@127.0.0.1", "text": "x"})
          elem(Hostile.Http.post(port, "/messages", body, 30_000, headers), 0)
        end,
        max_concurrency: 50,
        timeout: 60_000,
        on_timeout: :kill_task
      )
      |> Enum.frequencies_by(fn {_, s} -> s end)

    %{posts: n, statuses: statuses, ms: now() - t0}
  end

  @doc "`streams` /events connections that never read, then `posts` POST /messages to `to`."
  def sse_stalled_posts(port, streams, posts, to, headers \\ []) do
    stalled = for _ <- 1..streams, do: Hostile.Http.stalled(port, "/events")
    text = :binary.copy("p", 2_000)
    t0 = now()

    statuses =
      1..posts
      |> Task.async_stream(
        fn _ ->
          elem(
            Hostile.Http.post(
              port,
              "/messages",
              ~s({"to": "#{to}", "text": "#{text}"}),
              30_000,
              headers
            ),
            0
          )
        end,
        max_concurrency: 10,
        timeout: 60_000,
        on_timeout: :kill_task
      )
      |> Enum.frequencies_by(fn {_, s} -> s end)

    dropped = Enum.count(stalled, &closed_by_server?(&1, 2_000))

    %{
      streams: streams,
      posts: posts,
      statuses: statuses,
      streams_dropped: dropped,
      ms: now() - t0
    }
  end

  @doc "n connections that ask for /events and never read; they stay until the attacker leaves."
  def idle_events(port, n) do
    # Every module used below is loaded first: with thousands of sockets open, the code server
    # may have no descriptor left to read a .beam file with.
    Enum.each([Enum, Process, Hostile.Http, :gen_tcp, :inet], &Code.ensure_loaded!/1)
    t0 = now()
    socks = open_stalled(port, n, 0, [])
    Process.sleep(1_000)
    {failed, open} = Enum.split_with(socks, &match?({:error, _}, &1))
    refused = length(failed) + (n - length(socks)) + Enum.count(open, &closed_by_server?(&1, 0))
    # The sockets belong to this (erpc) process: hand them to one that outlives it.
    holder = spawn(fn -> receive do: (:never -> :ok) end)
    Enum.each(open, &:gen_tcp.controlling_process(&1, holder))
    %{connections: n, refused: refused, ms: now() - t0}
  end

  # Opens up to n stalled connections; gives up after 50 failures in a row (a server out of
  # descriptors lets connections time out), counting the rest as refused.
  defp open_stalled(_port, 0, _failing, acc), do: acc
  defp open_stalled(_port, _n, 50, acc), do: acc

  defp open_stalled(port, n, failing, acc) do
    case Hostile.Http.stalled(port, "/events", 1_000) do
      {:error, _} = e -> open_stalled(port, n - 1, failing + 1, [e | acc])
      sock -> open_stalled(port, n - 1, 0, [sock | acc])
    end
  end

  @doc "POST /messages to a node of the poster's choosing, outside the cluster."
  def open_relay(port, to, headers \\ []) do
    {status, body} =
      Hostile.Http.post(port, "/messages", ~s({"to": "#{to}", "text": "relay"}), 30_000, headers)

    %{status: status, body: String.trim(body)}
  end

  defp closed_by_server?({:error, _}, _wait), do: true

  # Reads what is left until the close, or until `wait` ms pass with nothing: the server's
  # close of the last stream it drops may still be behind the bytes queued before it.
  defp closed_by_server?(sock, wait) do
    case :gen_tcp.recv(sock, 0, wait) do
      {:ok, _} -> closed_by_server?(sock, wait)
      {:error, :timeout} -> false
      {:error, _} -> true
    end
  end

  defp now, do: System.monotonic_time(:millisecond)

  defp safe(fun) do
    try do
      fun.()
    catch
      kind, reason -> {kind, reason}
    end
  end
end
