defmodule Chat.Discovery do
  @moduledoc """
  DNS service discovery, the same scheme the C++ node uses.

  Every interval, each query is resolved to its A records (nothing is
  cached: a name that did not resolve is asked again next round), the
  EPMD of every address is asked which nodes live there, and every node
  found that is not connected yet gets `Node.connect/1`. A query written
  `NAME@DNSNAME` skips EPMD: it stands for the node `NAME@address` on
  every address `DNSNAME` resolves to.

  Configuration (see `config/1`):

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
  # Bounds on one round's network waits, so that a dead address cannot hold
  # a round up for longer than about an interval.
  @resolve_timeout 4_000
  @names_timeout 4_000
  @connect_timeout 8_000

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

  @doc "The nodes listed by the last completed round."
  def listed(server \\ __MODULE__), do: GenServer.call(server, :listed)

  @doc "Runs one round now and returns the nodes it listed (for tests and iex)."
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
      listed: MapSet.new(),
      timer: nil,
      rounds: 0
    }

    if Keyword.get(opts, :monitor_nodes, true), do: :net_kernel.monitor_nodes(true)

    Logger.info(
      "discovery: polling #{Enum.join(queries, ", ")} every #{div(state.interval, 1000)} s"
    )

    {:ok, state, {:continue, :round}}
  end

  @impl true
  def handle_continue(:round, state), do: {:noreply, run_round(state)}

  @impl true
  def handle_info(:round, state), do: {:noreply, run_round(%{state | timer: nil})}

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

  def handle_call(:poll, _from, state) do
    if state.timer, do: Process.cancel_timer(state.timer)
    state = run_round(%{state | timer: nil})
    {:reply, MapSet.to_list(state.listed), state}
  end

  # One round: list, log the differences with the previous listing, connect
  # to what is listed and not connected, and schedule the next round.
  defp run_round(state) do
    listed = list_nodes(state) |> MapSet.delete(state.self)

    for node <- MapSet.difference(listed, state.listed),
        do: Logger.info("discovery: #{node} joined")

    for node <- MapSet.difference(state.listed, listed),
        do: Logger.info("discovery: #{node} left (no longer listed)")

    connected = MapSet.new(state.connected.())

    listed
    |> Enum.reject(&MapSet.member?(connected, &1))
    |> in_parallel(@connect_timeout, fn node ->
      unless state.connect.(node) == true do
        Logger.debug("discovery: could not connect to #{node}")
      end
    end)

    timer = Process.send_after(self(), :round, state.interval)
    %{state | listed: listed, timer: timer, rounds: state.rounds + 1}
  end

  defp list_nodes(state) do
    resolved =
      state.queries
      |> in_parallel(@resolve_timeout, fn {base, dns} -> {base, dns, state.resolve.(dns)} end)
      |> Enum.flat_map(fn
        {:ok, {base, dns, []}} ->
          Logger.debug("discovery: #{dns} does not resolve")
          [{base, []}]

        {:ok, {base, _dns, ips}} ->
          [{base, ips}]

        {:exit, _} ->
          []
      end)

    direct = for {base, ips} <- resolved, base != nil, ip <- ips, do: node_name(base, ip)

    via_epmd =
      for({nil, ips} <- resolved, ip <- ips, do: ip)
      |> Enum.uniq()
      |> in_parallel(@names_timeout, fn ip ->
        for base <- state.names.(ip), do: node_name(base, ip)
      end)
      |> Enum.flat_map(fn
        {:ok, nodes} -> nodes
        {:exit, _} -> []
      end)

    MapSet.new(direct ++ via_epmd)
  end

  defp in_parallel(items, timeout, fun) do
    items
    |> Task.async_stream(fun, timeout: timeout, on_timeout: :kill_task, ordered: false)
    |> Enum.to_list()
  end

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
