defmodule Chat.Discovery do
  @moduledoc """
  DNS service discovery, the same scheme the C++ node uses.

  Every interval, each query is resolved to its A records (nothing is
  cached: a name that did not resolve is asked again next round), the
  EPMD of every address is asked which nodes live there, and every node
  found that is not connected yet gets `Node.connect/1`. A query written
  `NAME@DNSNAME` skips EPMD: it stands for the node `NAME@address` on
  every address `DNSNAME` resolves to.

  Each address is asked by a process of its own, so an address whose EPMD
  does not answer holds up neither the other addresses nor the next round.

  Configuration (see `config/2`):

    * `CHAT_DISCOVERY` - comma-separated queries;
    * otherwise, when `HEROKU_DNS_APP_NAME` is set, one query
      `<type>.$HEROKU_DNS_APP_NAME` per process type of the `Procfile`
      (looked for in the current directory, then its parent), or
      `$HEROKU_DNS_FORMATION_NAME` when no Procfile is found;
    * `CHAT_DISCOVERY_INTERVAL` - seconds between rounds (default 5).

  Nodes that appear in or disappear from the listing, and connections that
  come up or go down, are logged at info level.
  """

  use GenServer
  require Logger

  @default_interval_s 5
  # Bounds on the network waits.
  @resolve_timeout 4_000
  # A connection attempt gives up after net_setuptime (7 s by default).
  @connect_timeout 8_000
  # A probe (EPMD's answer, then the connections) still running after this
  # is killed at the next round.
  @probe_timeout 15_000

  @typedoc "A query: `{basename | nil, dns_name}`."
  @type query :: {String.t() | nil, String.t()}

  ## Configuration

  @doc """
  Reads the discovery configuration from an environment map (default: the
  process environment) and the Procfile directories `dirs` (default: the
  current directory and its parent).

  Returns `{queries, interval_ms}`; `queries` is empty when discovery is not
  configured.
  """
  @spec config(%{optional(String.t()) => String.t()}, [Path.t()]) :: {[String.t()], pos_integer()}
  def config(env \\ System.get_env(), dirs \\ default_dirs()) do
    {queries(env, dirs), interval_ms(env)}
  end

  defp default_dirs do
    cwd = File.cwd!()
    [cwd, Path.dirname(cwd)]
  end

  @doc false
  def queries(env, dirs) do
    explicit = split_list(Map.get(env, "CHAT_DISCOVERY", ""))

    cond do
      explicit != [] ->
        explicit

      present?(env["HEROKU_DNS_APP_NAME"]) ->
        case procfile_types(dirs) do
          [] ->
            if present?(env["HEROKU_DNS_FORMATION_NAME"]),
              do: [env["HEROKU_DNS_FORMATION_NAME"]],
              else: []

          types ->
            Enum.map(types, &"#{&1}.#{env["HEROKU_DNS_APP_NAME"]}")
        end

      true ->
        []
    end
  end

  @doc false
  def interval_ms(env) do
    case Map.get(env, "CHAT_DISCOVERY_INTERVAL") do
      nil ->
        @default_interval_s * 1000

      text ->
        case Integer.parse(String.trim(text)) do
          {n, ""} when n >= 1 ->
            n * 1000

          _ ->
            Logger.warning(
              "CHAT_DISCOVERY_INTERVAL=#{inspect(text)} is not a whole number of seconds >= 1; " <>
                "using #{@default_interval_s}"
            )

            @default_interval_s * 1000
        end
    end
  end

  @doc "Process types declared by Procfile text, in order."
  @spec procfile_types(String.t() | [Path.t()]) :: [String.t()]
  def procfile_types(dirs) when is_list(dirs) do
    Enum.find_value(dirs, [], fn dir ->
      case File.read(Path.join(dir, "Procfile")) do
        {:ok, text} -> procfile_types(text)
        {:error, _} -> nil
      end
    end)
  end

  def procfile_types(text) when is_binary(text) do
    for line <- String.split(text, ["\r\n", "\n"]),
        [_, type] <- [Regex.run(~r/^([A-Za-z0-9_-]+):/, line)],
        do: type
  end

  @doc "Splits `NAME@DNSNAME` into `{NAME, DNSNAME}`; a plain DNS name gives `{nil, name}`."
  @spec parse_query(String.t()) :: query
  def parse_query(query) do
    case String.split(query, "@", parts: 2) do
      [name, dns] when name != "" and dns != "" -> {name, dns}
      _ -> {nil, query}
    end
  end

  defp split_list(text) do
    text |> String.split(",") |> Enum.map(&String.trim/1) |> Enum.reject(&(&1 == ""))
  end

  defp present?(value), do: is_binary(value) and value != ""

  ## Process

  @doc """
  Starts the discovery loop.

  Options: `:queries` (list of strings, required), `:interval` (ms,
  required), `:name` (default `Chat.Discovery`). The network operations
  can be replaced (for tests): `:resolve` (`dns_name -> [ip]`), `:names`
  (`ip -> [basename]`), `:connect` (`node -> boolean`), `:connected`
  (`-> [node]`), `:self` (this node's name).
  """
  def start_link(opts) do
    GenServer.start_link(__MODULE__, opts, name: Keyword.get(opts, :name, __MODULE__))
  end

  @doc "The nodes listed by the addresses DNS gave in the last round."
  def listed(server \\ __MODULE__), do: GenServer.call(server, :listed)

  @doc """
  Runs a round now, waits until every address has answered (or was given
  up on) and returns the nodes listed. For tests and iex.
  """
  def poll(server \\ __MODULE__), do: GenServer.call(server, :poll, 60_000)

  @impl true
  def init(opts) do
    queries = Keyword.fetch!(opts, :queries)

    state = %{
      queries: Enum.map(queries, &parse_query/1),
      interval: Keyword.fetch!(opts, :interval),
      resolve: Keyword.get(opts, :resolve, &resolve/1),
      names: Keyword.get(opts, :names, &epmd_names/1),
      connect: Keyword.get(opts, :connect, &connect/1),
      connected: Keyword.get(opts, :connected, &Node.list/0),
      self: Keyword.get(opts, :self, node()),
      # {basename | nil, ip} pairs DNS gave in the last round
      targets: MapSet.new(),
      # target => the nodes its last probe listed
      seen: %{},
      # target => {pid, monitor, started_ms} of the probe asking it now
      probes: %{},
      listed: MapSet.new(),
      waiters: [],
      timer: nil
    }

    if Keyword.get(opts, :monitor_nodes, true), do: :net_kernel.monitor_nodes(true)

    Logger.info(
      "discovery: polling #{Enum.join(queries, ", ")} every #{div(state.interval, 1000)} s"
    )

    # Distribution is up before the :chat application starts, and a peer's discovery may
    # connect in between: no nodeup reaches us for those, so they are logged here.
    for n <- state.connected.() do
      Logger.info("discovery: connected to #{n} (before discovery started)")
    end

    {:ok, state, {:continue, :round}}
  end

  @impl true
  def handle_continue(:round, state), do: {:noreply, run_round(state)}

  @impl true
  def handle_info(:round, state), do: {:noreply, run_round(%{state | timer: nil})}

  def handle_info({:probed, target, nodes}, state) do
    # A probe for an address DNS no longer gives is too late to count.
    if MapSet.member?(state.targets, target) do
      {:noreply, update_listing(%{state | seen: Map.put(state.seen, target, nodes)})}
    else
      {:noreply, state}
    end
  end

  def handle_info({:DOWN, ref, :process, _pid, _reason}, state) do
    probes = for {t, {_, r, _} = p} <- state.probes, r != ref, into: %{}, do: {t, p}
    {:noreply, reply_waiters(%{state | probes: probes})}
  end

  def handle_info({:nodeup, node}, state) do
    Logger.info("discovery: connected to #{node}")
    {:noreply, state}
  end

  def handle_info({:nodedown, node}, state) do
    Logger.info("discovery: disconnected from #{node}")
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def handle_call(:listed, _from, state), do: {:reply, MapSet.to_list(state.listed), state}

  def handle_call(:poll, from, state) do
    if state.timer, do: Process.cancel_timer(state.timer)
    state = run_round(%{state | timer: nil})
    {:noreply, reply_waiters(%{state | waiters: [from | state.waiters]})}
  end

  # A round resolves every query and starts a probe for each address that
  # has none running. Probes run on their own, so an address that does not
  # answer delays nobody but itself; a probe still running after
  # @probe_timeout is killed. The next round is due an interval after this
  # one started.
  defp run_round(state) do
    timer = Process.send_after(self(), :round, state.interval)
    state = kill_stuck_probes(state)
    targets = resolve_all(state)
    connected = MapSet.new(state.connected.())

    state = %{
      state
      | targets: targets,
        seen: Map.take(state.seen, MapSet.to_list(targets)),
        timer: timer
    }

    targets
    |> Enum.reject(&Map.has_key?(state.probes, &1))
    |> Enum.reduce(state, &start_probe(&2, &1, connected))
    |> update_listing()
  end

  # Every {basename | nil, ip} DNS gives now.
  defp resolve_all(state) do
    state.queries
    |> Task.async_stream(fn {base, dns} -> {base, dns, state.resolve.(dns)} end,
      timeout: @resolve_timeout,
      on_timeout: :kill_task,
      ordered: false
    )
    |> Enum.flat_map(fn
      {:ok, {_base, dns, []}} ->
        Logger.debug("discovery: #{dns} does not resolve")
        []

      {:ok, {base, _dns, ips}} ->
        for ip <- ips, do: {base, ip}

      {:exit, _} ->
        []
    end)
    |> MapSet.new()
  end

  # A probe lists the nodes of one address (its EPMD's names, or the one
  # NAME@address), reports them, then connects to those not connected yet.
  defp start_probe(state, {base, ip} = target, connected) do
    server = self()
    %{names: names, connect: connect, self: me} = state

    {pid, ref} =
      spawn_monitor(fn ->
        nodes = if base, do: [node_name(base, ip)], else: Enum.map(names.(ip), &node_name(&1, ip))

        send(server, {:probed, target, nodes})

        nodes
        |> Enum.reject(&(&1 == me or MapSet.member?(connected, &1)))
        |> Task.async_stream(
          fn node ->
            unless connect.(node) == true do
              Logger.debug("discovery: could not connect to #{node}")
            end
          end,
          timeout: @connect_timeout,
          on_timeout: :kill_task,
          ordered: false
        )
        |> Stream.run()
      end)

    %{state | probes: Map.put(state.probes, target, {pid, ref, now_ms()})}
  end

  defp kill_stuck_probes(state) do
    for {_target, {pid, _ref, started}} <- state.probes, now_ms() - started > @probe_timeout do
      Process.exit(pid, :kill)
    end

    state
  end

  defp update_listing(state) do
    listed =
      state.seen |> Map.values() |> List.flatten() |> MapSet.new() |> MapSet.delete(state.self)

    for node <- MapSet.difference(listed, state.listed),
        do: Logger.info("discovery: #{node} joined")

    for node <- MapSet.difference(state.listed, listed),
        do: Logger.info("discovery: #{node} left (no longer listed)")

    %{state | listed: listed}
  end

  defp reply_waiters(%{probes: probes, waiters: [_ | _] = waiters} = state)
       when map_size(probes) == 0 do
    for from <- waiters, do: GenServer.reply(from, MapSet.to_list(state.listed))
    %{state | waiters: []}
  end

  defp reply_waiters(state), do: state

  defp now_ms, do: System.monotonic_time(:millisecond)

  defp node_name(base, ip), do: String.to_atom("#{base}@#{:inet.ntoa(ip)}")

  ## The real network operations

  @doc false
  def resolve(dns_name) do
    case :inet.getaddrs(String.to_charlist(dns_name), :inet) do
      {:ok, ips} -> Enum.uniq(ips)
      {:error, _} -> []
    end
  end

  @doc false
  def epmd_names(ip) do
    case :erl_epmd.names(ip) do
      {:ok, names} ->
        for {name, _port} <- names, do: List.to_string(name)

      {:error, reason} ->
        Logger.debug("discovery: EPMD on #{:inet.ntoa(ip)}: #{inspect(reason)}")
        []
    end
  end

  @doc false
  def connect(node), do: Node.connect(node) == true
end
