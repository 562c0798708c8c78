# Captures real distribution traffic between a BEAM and chat-node and writes the fuzz seed
# corpora (test/fuzz/corpus/<target>/). Run through test/fuzz/capture/run.sh.
#
# How: this VM starts undistributed and runs its own little EPMD (a fake one, on a free
# loopback port) before it goes distributed, so that
#   - the creations handed out are fixed: pids and refs in the captured frames then name
#     processes of the node the fuzz harness builds (test/fuzz/common.hpp: fuzz@127.0.0.1,
#     creation 0x0f022001);
#   - PORT_PLEASE2 answers with the port of a recording proxy in front of each node, so
#     every byte of every distribution connection, both ways, goes through us.
# The session is a real one: Node.ping, global's connect protocol, names and locks, pg's
# discover/sync/join/leave, Chat.send_message, messages to {Chat, node}, rpc
# (rpc:call, erpc, rpc:cast, block_call), links, monitors, exits, node monitors, and a
# chat-node client (ping/send) connecting to this VM, which gives the initiator's view of a
# handshake. Real EPMD replies come from a private real epmd.
#
# Seeds are the frames as captured (4-byte header included). Handshake seeds are the
# peers' messages as captured, except the digests that depend on the fuzz harness's fixed
# challenge, which are recomputed (the captured ones answer chat-node's random challenge).

defmodule Capture do
  @node_name "fuzz@127.0.0.1"
  @node_creation 0x0F022001
  @cookie "fuzzcookie"
  @harness_challenge 0x2A2A2A2A

  def node_name, do: @node_name
  def cookie, do: @cookie

  def creation_for("fuzz"), do: @node_creation
  def creation_for("amanda"), do: 0x0A0A0001
  def creation_for(_), do: 0x0C0C0001

  # --- recorder ---------------------------------------------------------------------------
  # One Agent holds every connection's chunks: {conn_id, from_name, to_name, dir, bytes}.

  def start_recorder, do: Agent.start_link(fn -> [] end, name: __MODULE__.Rec)
  def record(entry), do: Agent.update(__MODULE__.Rec, &[entry | &1])
  def recorded, do: Agent.get(__MODULE__.Rec, &Enum.reverse/1)

  # --- fake EPMD ----------------------------------------------------------------------------

  # On the port this VM was booted with (-epmd_port: erl_epmd reads it only at boot).
  def start_epmd(port) do
    l =
      case :gen_tcp.listen(port, [:binary, active: false, ip: {127, 0, 0, 1}, reuseaddr: true]) do
        {:ok, l} -> l
        {:error, :eaddrinuse} -> System.halt(75)
      end

    {:ok, reg} = Agent.start_link(fn -> %{} end)
    spawn_link(fn -> accept_epmd(l, reg) end)
    {port, reg}
  end

  defp accept_epmd(l, reg) do
    {:ok, s} = :gen_tcp.accept(l)
    pid = spawn(fn -> serve_epmd(s, reg) end)
    :ok = :gen_tcp.controlling_process(s, pid)
    send(pid, :go)
    accept_epmd(l, reg)
  end

  defp serve_epmd(s, reg) do
    receive do
      :go -> :ok
    end

    {:ok, <<len::16>>} = :gen_tcp.recv(s, 2)
    {:ok, req} = :gen_tcp.recv(s, len)

    case req do
      <<120, port::16, _type, _proto, _hi::16, _lo::16, nlen::16, name::binary-size(nlen),
        _::binary>> ->
        proxy = start_proxy(name, port)
        Agent.update(reg, &Map.put(&1, name, {port, proxy}))
        :ok = :gen_tcp.send(s, <<118, 0, creation_for(name)::32>>)
        # The registration lasts as long as this connection.
        _ = :gen_tcp.recv(s, 0)
        Agent.update(reg, &Map.delete(&1, name))

      <<122, name::binary>> ->
        case Agent.get(reg, &Map.get(&1, name)) do
          {_real, proxy} ->
            :gen_tcp.send(
              s,
              <<119, 0, proxy::16, 77, 0, 6::16, 5::16, byte_size(name)::16, name::binary, 0::16>>
            )

          nil ->
            :gen_tcp.send(s, <<119, 1>>)
        end

      <<110>> ->
        {:ok, me} = :inet.port(s)
        text = for {n, {_, p}} <- Agent.get(reg, & &1), into: "", do: "name #{n} at port #{p}\n"
        :gen_tcp.send(s, <<me::32, text::binary>>)
    end

    :gen_tcp.close(s)
  end

  # --- recording proxy ----------------------------------------------------------------------

  defp start_proxy(name, real_port) do
    {:ok, l} = :gen_tcp.listen(0, [:binary, active: false, ip: {127, 0, 0, 1}, reuseaddr: true])
    {:ok, port} = :inet.port(l)
    spawn(fn -> accept_proxy(l, name, real_port) end)
    port
  end

  defp accept_proxy(l, name, real_port) do
    case :gen_tcp.accept(l) do
      {:ok, client} ->
        {:ok, server} = :gen_tcp.connect({127, 0, 0, 1}, real_port, [:binary, active: false])
        id = System.unique_integer([:positive, :monotonic])
        a = spawn(fn -> pump(client, server, {id, name, :to_acceptor}) end)
        b = spawn(fn -> pump(server, client, {id, name, :to_initiator}) end)
        :ok = :gen_tcp.controlling_process(client, a)
        :ok = :gen_tcp.controlling_process(server, b)
        accept_proxy(l, name, real_port)

      {:error, _} ->
        :ok
    end
  end

  defp pump(from, to, {id, name, dir} = tag) do
    case :gen_tcp.recv(from, 0) do
      {:ok, bytes} ->
        record({id, name, dir, bytes})
        _ = :gen_tcp.send(to, bytes)
        pump(from, to, tag)

      {:error, _} ->
        :gen_tcp.close(to)
    end
  end

  # --- splitting the streams ------------------------------------------------------------------

  # A handshake direction: 2-byte length messages up to and including the last one of that
  # side (the initiator's 'r' challenge reply, the acceptor's 'a' ack); frames after it.
  def split_handshake(stream, last_tag, acc \\ []) do
    case stream do
      <<len::16, msg::binary-size(len), rest::binary>> ->
        acc = [msg | acc]

        if :binary.first(msg) == last_tag,
          do: {Enum.reverse(acc), rest},
          else: split_handshake(rest, last_tag, acc)

      _ ->
        {Enum.reverse(acc), stream}
    end
  end

  def split_frames(<<len::32, data::binary-size(len), rest::binary>>),
    do: [data | split_frames(rest)]

  def split_frames(_), do: []

  # Control and payload terms of a frame, each with its version byte. A frame in the
  # distribution-header form (<<131, 68, ...>>, what a BEAM sends once chat-node takes the atom
  # cache) names atoms that earlier frames of its connection cached: it is not split here, and
  # only the whole-session seed below keeps such frames in an order that decodes.
  def frame_terms(<<112, rest::binary>>), do: terms(rest)
  def frame_terms(_), do: []

  defp terms(<<131, _::binary>> = bin) do
    {_t, used} = :erlang.binary_to_term(bin, [:used])
    <<one::binary-size(used), rest::binary>> = bin
    [one | terms(rest)]
  end

  defp terms(_), do: []

  def op_name(frame) do
    case frame_terms(frame) do
      [control | _] ->
        case :erlang.binary_to_term(control) do
          t when is_tuple(t) and tuple_size(t) > 0 -> "op#{elem(t, 0)}"
          _ -> "other"
        end

      [] ->
        "raw"
    end
  end

  def digest(challenge, cookie), do: :erlang.md5(cookie <> Integer.to_string(challenge))
  def harness_digest, do: digest(@harness_challenge, @cookie)

  def framed(msg), do: <<byte_size(msg)::16, msg::binary>>

  # --- writing ---------------------------------------------------------------------------------

  def write(dir, name, bytes) do
    File.mkdir_p!(dir)
    File.write!(Path.join(dir, name), bytes)
  end

  def hash(bytes),
    do: :crypto.hash(:sha, bytes) |> Base.encode16(case: :lower) |> binary_part(0, 12)
end

[out_dir, chat_node] =
  case System.argv() do
    [o, c] -> [o, Path.expand(c)]
    _ -> raise "usage: capture.exs OUT_DIR CHAT_NODE_BINARY"
  end

{:ok, _} = Capture.start_recorder()
epmd_port = String.to_integer(System.fetch_env!("ERL_EPMD_PORT"))
{epmd_port, _reg} = Capture.start_epmd(epmd_port)
IO.puts("capture: fake epmd on port #{epmd_port}")

run_cli = fn args ->
  {out, status} =
    System.cmd(chat_node, args,
      env: [{"ERL_EPMD_PORT", Integer.to_string(epmd_port)}],
      stderr_to_stdout: true
    )

  IO.puts(
    "capture: chat-node #{Enum.join(Enum.take(args, 2), " ")} -> #{status}: #{String.trim(out)}"
  )

  status
end

# The chat node under test.
node_port =
  Port.open({:spawn_executable, chat_node}, [
    :binary,
    :exit_status,
    {:line, 65536},
    {:env, [{~c"ERL_EPMD_PORT", String.to_charlist(Integer.to_string(epmd_port))}]},
    args: ["--name", Capture.node_name(), "--cookie", Capture.cookie(), "--log-level", "warn"]
  ])

wait_line = fn want, timeout ->
  deadline = System.monotonic_time(:millisecond) + timeout

  Stream.repeatedly(fn ->
    left = max(deadline - System.monotonic_time(:millisecond), 0)

    receive do
      {^node_port, {:data, {:eol, line}}} -> line
      {^node_port, {:exit_status, s}} -> raise "chat-node exited (#{s})"
    after
      left -> raise "chat-node did not print #{inspect(want)}"
    end
  end)
  |> Enum.find(&(&1 == want))
end

# run.sh kills what is listed here, however this script ends.
{:os_pid, node_os_pid} = Port.info(node_port, :os_pid)
File.write!(Path.join(out_dir, "pids"), "#{node_os_pid}\n", [:append])
wait_line.("Node name: #{Capture.node_name()}", 20_000)

{:ok, _} = Node.start(:"amanda@127.0.0.1", :longnames)
Node.set_cookie(String.to_atom(Capture.cookie()))
{:ok, _} = Application.ensure_all_started(:chat)
fuzz = String.to_atom(Capture.node_name())

# --- the session ------------------------------------------------------------------------------
:pong = Node.ping(fuzz)

# global and pg: the connect protocol (init_connect, lock_set, exchange, resolved…) ran on
# nodeup; then names, locks and groups both ways.
:ok = :global.sync()
:yes = :global.register_name(:capture_name, self())
true = :global.set_lock({:capture_lock, self()}, [node(), fuzz])
true = :global.del_lock({:capture_lock, self()}, [node(), fuzz])
:ok = :global.trans({:capture_trans, self()}, fn -> :ok end, [node(), fuzz])
:ok = :pg.join(:capture_group, self())
:ok = :pg.leave(:capture_group, self())
:ok = :pg.join(:capture_group, self())
_ = :rpc.call(fuzz, :pg, :get_members, [Chat])
_ = :rpc.call(fuzz, :global, :whereis_name, [:capture_name])
_ = :rpc.call(fuzz, :global, :registered_names, [])
_ = :rpc.call(fuzz, Chat, :broadcast, ["broadcast from capture"])
_ = :global.unregister_name(:capture_name)

nil = Chat.send_message(fuzz, "hello from amanda")
wait_line.("hello from amanda", 10_000)
nil = Chat.send_message(fuzz, "ünïcödé ✓ and a longer line " <> String.duplicate("x", 300))
nil = Chat.send_message(fuzz, ~c"a charlist")
send({Chat, fuzz}, "to the inbox")
wait_line.("to the inbox", 10_000)
send({Chat, fuzz}, {:not, "a binary", [1, 2.5, %{a: 1}]})

# rpc in its forms
_ = :rpc.call(fuzz, :erlang, :node, [])
_ = :rpc.call(fuzz, :erlang, :nodes, [[:visible, :this]])
_ = :rpc.call(fuzz, Chat, :receive_message, ["via rpc"])
_ = :rpc.call(fuzz, :no_such_module, :f, [1, "two", :three])
_ = :erpc.call(fuzz, :os, :getpid, [])

_ =
  try do
    :erpc.call(fuzz, :erlang, :error, [:boom])
  catch
    k, r -> {k, r}
  end

:rpc.cast(fuzz, Chat, :receive_message, ["via rpc cast"])
_ = :rpc.block_call(fuzz, :erlang, :is_alive, [])
_ = :rpc.call(fuzz, Chat, :send_message, [node(), "rpc asks fuzz to message amanda"])

# links, monitors, exits
ref = Process.monitor({Chat, fuzz})
Process.demonitor(ref)
ref = Process.monitor({:no_such_name, fuzz})

receive do
  {:DOWN, ^ref, _, _, _} -> :ok
after
  5_000 -> :ok
end

Process.flag(:trap_exit, true)

{:ok, task_pid} =
  Task.Supervisor.start_child({Chat.TaskSupervisor, fuzz}, Chat, :receive_message, [
    "child",
    node()
  ])

_ = task_pid

task =
  Task.Supervisor.async_nolink({Chat.TaskSupervisor, fuzz}, Chat, :receive_message, [
    "async_nolink"
  ])

_ = Task.yield(task, 5_000)

sup = :rpc.call(fuzz, :erlang, :whereis, [Chat.TaskSupervisor])
remote_pid = if is_pid(sup), do: sup, else: nil

pid = Node.spawn(fuzz, Chat, :receive_message, ["spawned"])

mref = Process.monitor(pid)

receive do
  {:DOWN, ^mref, _, _, _} -> :ok
after
  5_000 -> :ok
end

lpid = Node.spawn_link(fuzz, :erlang, :node, [])

receive do
  {:EXIT, ^lpid, _} -> :ok
after
  5_000 -> :ok
end

# A process of ours that chat-node's processes link to and monitor through a call: the
# stock GenServer call to net_kernel (is_auth) and to rex.
_ = GenServer.call({:net_kernel, fuzz}, {:is_auth, node()}, 5_000)

_ =
  try do
    GenServer.call({:rex, fuzz}, :features_request, 5_000)
  catch
    k, r -> {k, r}
  end

victim = Node.spawn(fuzz, :erlang, :nodes, [])
Process.link(victim)
Process.unlink(victim)
Process.exit(victim, :kill)
if remote_pid, do: Process.exit(remote_pid, :normal)

Node.monitor(fuzz, true)
Node.monitor(fuzz, false)

# A chat-node client connecting to this VM: the initiator side of a handshake.
0 =
  run_cli.([
    "ping",
    "amanda@127.0.0.1",
    "--name",
    "cli1@127.0.0.1",
    "--cookie",
    Capture.cookie(),
    "--log-level",
    "warn"
  ])

run_cli.([
  "send",
  "amanda@127.0.0.1",
  "hello from a client",
  "--name",
  "cli2@127.0.0.1",
  "--cookie",
  Capture.cookie(),
  "--log-level",
  "warn"
])

# ... and one with a wrong cookie, so the acceptor's refusal is seen too.
run_cli.([
  "ping",
  "amanda@127.0.0.1",
  "--name",
  "cli3@127.0.0.1",
  "--cookie",
  "wrongcookie",
  "--log-level",
  "warn"
])

# The node says goodbye: links and monitors fire on its side.
nil = Chat.send_message(fuzz, "bye")
Port.close(node_port)
Node.stop()

# --- corpora ------------------------------------------------------------------------------------
entries = Capture.recorded()
conns = Enum.group_by(entries, fn {id, name, _dir, _} -> {id, name} end)
counts = :ets.new(:counts, [:set, :public])
for k <- [:frames, :handshake, :terms, :epmd], do: :ets.insert(counts, {k, 0})
bump = fn k -> :ets.update_counter(counts, k, 1) end
seen = :ets.new(:seen, [:set, :public])

emit = fn target, prefix, bytes ->
  h = Capture.hash(bytes)

  if :ets.insert_new(seen, {{target, h}}) do
    Capture.write(Path.join(out_dir, Atom.to_string(target)), "#{prefix}-#{h}", bytes)
    bump.(target)
  end
end

harness_digest = Capture.harness_digest()

for {{_id, acceptor_name}, chunks} <- Enum.sort(conns) do
  stream = fn dir -> for({_, _, ^dir, b} <- chunks, into: "", do: b) end
  from_initiator = stream.(:to_acceptor)
  from_acceptor = stream.(:to_initiator)
  {init_msgs, init_rest} = Capture.split_handshake(from_initiator, ?r)
  {acc_msgs, acc_rest} = Capture.split_handshake(from_acceptor, ?a)

  # Handshake seeds. Control byte 0: admission ok, chunk seed 0; a few other chunkings too.
  acceptor_input =
    Enum.map(init_msgs, fn
      <<?r, challenge::binary-size(4), _digest::binary>> ->
        <<?r, challenge::binary, harness_digest::binary>>

      m ->
        m
    end)

  initiator_input =
    Enum.map(acc_msgs, fn
      <<?a, _digest::binary>> -> <<?a, harness_digest::binary>>
      m -> m
    end)

  for {msgs, rest, role} <- [
        {acceptor_input, init_rest, "from-initiator"},
        {initiator_input, acc_rest, "from-acceptor"}
      ],
      msgs != [] do
    body = for m <- msgs, into: "", do: Capture.framed(m)

    first_frames =
      Capture.split_frames(rest)
      |> Enum.take(2)
      |> Enum.map(&<<byte_size(&1)::32, &1::binary>>)
      |> Enum.join()

    for control <- [0, 8 * 5, 8 * 17 + 1, 2, 3, 4] do
      emit.(:handshake, "#{role}-#{acceptor_name}-c#{control}", <<control, body::binary>>)
    end

    emit.(
      :handshake,
      "#{role}-#{acceptor_name}-with-frames",
      <<0, body::binary, first_frames::binary>>
    )
  end

  # The 'alive' path: the acceptor says alive, the initiator answers "strue".
  case acceptor_input do
    [name_msg | more] ->
      alive =
        Capture.framed(name_msg) <>
          Capture.framed("strue") <> for m <- more, into: "", do: Capture.framed(m)

      emit.(:handshake, "from-initiator-#{acceptor_name}-alive", <<4, alive::binary>>)

    _ ->
      :ok
  end

  # Frames sent to the chat node under test: the frames corpus. Every term: the terms corpus.
  for {rest, who} <- [{init_rest, "initiator"}, {acc_rest, "acceptor"}],
      frame <- Capture.split_frames(rest) do
    if acceptor_name == "fuzz" and who == "initiator" do
      emit.(:frames, "beam-#{Capture.op_name(frame)}", <<byte_size(frame)::32, frame::binary>>)
    end

    for t <- Capture.frame_terms(frame), do: emit.(:terms, "#{who}-#{acceptor_name}", t)
  end
end

# A tick, and a whole connection's worth of frames as one input.
emit.(:frames, "tick", <<0::32>>)

whole =
  for {{_id, "fuzz"}, chunks} <- Enum.sort(conns), into: "" do
    from_initiator = for({_, _, :to_acceptor, b} <- chunks, into: "", do: b)
    {_, rest} = Capture.split_handshake(from_initiator, ?r)
    rest
  end

emit.(:frames, "beam-session", whole)

# --- real EPMD replies ----------------------------------------------------------------------------
{:ok, probe} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
{:ok, real_epmd_port} = :inet.port(probe)
:gen_tcp.close(probe)

epmd =
  Port.open({:spawn_executable, System.find_executable("epmd")}, [
    :binary,
    :exit_status,
    {:env, [{~c"ERL_EPMD_ADDRESS", ~c"127.0.0.1"}]},
    args: ["-port", Integer.to_string(real_epmd_port)]
  ])

{:os_pid, epmd_os_pid} = Port.info(epmd, :os_pid)
File.write!(Path.join(out_dir, "pids"), "#{epmd_os_pid}\n", [:append])

connect_epmd = fn ->
  Enum.find_value(1..200, fn _ ->
    case :gen_tcp.connect({127, 0, 0, 1}, real_epmd_port, [:binary, active: false]) do
      {:ok, s} ->
        s

      {:error, _} ->
        receive do
        after
          25 -> nil
        end
    end
  end) || raise "epmd did not start"
end

ask = fn req, keep_open ->
  s = connect_epmd.()
  :ok = :gen_tcp.send(s, Capture.framed(req))

  reply =
    if keep_open do
      {:ok, r} = :gen_tcp.recv(s, 0, 5_000)
      r
    else
      Stream.repeatedly(fn -> :gen_tcp.recv(s, 0, 5_000) end)
      |> Enum.take_while(&match?({:ok, _}, &1))
      |> Enum.map_join(fn {:ok, b} -> b end)
    end

  {s, reply}
end

alive2 = fn name, port ->
  <<120, port::16, 77, 0, 6::16, 5::16, byte_size(name)::16, name::binary, 0::16>>
end

{reg1, r1} = ask.(alive2.("fuzz", 40001), true)
emit.(:epmd, "alive2-reply", r1)
{_dup, r2} = ask.(alive2.("fuzz", 40002), true)
emit.(:epmd, "alive2-refused", r2)
{reg2, _} = ask.(alive2.("another", 40003), true)
{_, r3} = ask.(<<122, "fuzz">>, false)
emit.(:epmd, "port2-reply", r3)
{_, r4} = ask.(<<122, "nobody">>, false)
emit.(:epmd, "port2-notfound", r4)
{_, r5} = ask.(<<110>>, false)
emit.(:epmd, "names-reply", r5)
:gen_tcp.close(reg1)
:gen_tcp.close(reg2)
System.cmd("kill", [Integer.to_string(epmd_os_pid)])

IO.puts(
  "capture: wrote " <>
    Enum.map_join(:ets.tab2list(counts) |> Enum.sort(), ", ", fn {k, n} -> "#{n} #{k}" end) <>
    " seeds to #{out_dir}"
)
