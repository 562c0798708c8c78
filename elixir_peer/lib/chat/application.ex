defmodule Chat.Application do
  @moduledoc false

  use Application
  require Logger

  @impl true
  def start(_type, _args) do
    IO.puts("Node name: #{node()}")

    # The default pg scope (OTP's kernel starts it only with start_pg set), before the inbox
    # that joins the Chat group in it.
    children =
      [
        %{id: :pg, start: {:pg, :start_link, []}},
        {Task.Supervisor, name: Chat.TaskSupervisor},
        Chat.Inbox
      ] ++ http_children() ++ discovery_children()

    Supervisor.start_link(children, strategy: :one_for_one, name: Chat.Supervisor)
  end

  # Heroku only routes HTTP to `web` dynos and kills one that has not bound
  # $PORT within 60 seconds, so only those get a listener.
  defp http_children do
    with true <- web_dyno?(System.get_env("DYNO"), node()),
         port when is_binary(port) <- System.get_env("PORT") do
      case Integer.parse(port) do
        {n, ""} when n >= 0 and n <= 65_535 ->
          [{Chat.Health, port: n}]

        _ ->
          Logger.warning("PORT=#{inspect(port)} is not a port number; no HTTP listener")
          []
      end
    else
      _ -> []
    end
  end

  # DNS service discovery (Heroku Private Spaces): only for a distributed
  # node, and only when queries are configured (see Chat.Discovery).
  defp discovery_children do
    case Chat.Discovery.config() do
      {[], _interval} ->
        []

      {queries, interval} ->
        if Node.alive?() do
          [{Chat.Discovery, queries: queries, interval: interval}]
        else
          Logger.warning("discovery configured but this node is not distributed; not starting it")
          []
        end
    end
  end

  @doc false
  def web_dyno?(nil, node), do: String.starts_with?(Atom.to_string(node), "web@")
  def web_dyno?(dyno, _node), do: String.starts_with?(dyno, "web.")
end
