defmodule Chat.Health do
  @moduledoc """
  Minimal HTTP/1.x listener on plain `:gen_tcp`, only there so that a
  Heroku `web` dyno binds `$PORT`.

  `GET /health` answers 200 with body `ok`; every other request gets 404.
  Each connection serves one request and is then closed.
  """

  require Logger

  def child_spec(opts) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}}
  end

  @doc """
  Starts the listener. Returns only once the port is bound (or binding
  failed), so a started listener can be connected to right away.
  """
  def start_link(opts) do
    port = Keyword.fetch!(opts, :port)
    :proc_lib.start_link(__MODULE__, :init, [port])
  end

  @doc false
  def init(port) do
    case :gen_tcp.listen(port, [:binary, packet: :http_bin, active: false, reuseaddr: true]) do
      {:ok, socket} ->
        {:ok, bound} = :inet.port(socket)
        :proc_lib.init_ack({:ok, self()})
        Logger.info("HTTP listener on port #{bound}")
        accept_loop(socket)

      {:error, reason} ->
        :proc_lib.init_ack({:error, {:listen_failed, port, reason}})
    end
  end

  defp accept_loop(socket) do
    {:ok, conn} = :gen_tcp.accept(socket)
    # The handler only touches the socket once it owns it.
    {:ok, pid} =
      Task.Supervisor.start_child(Chat.TaskSupervisor, fn ->
        receive do
          {:serve, ^conn} -> serve(conn)
        end
      end)

    case :gen_tcp.controlling_process(conn, pid) do
      :ok ->
        send(pid, {:serve, conn})

      {:error, _} ->
        Process.exit(pid, :kill)
        :gen_tcp.close(conn)
    end

    accept_loop(socket)
  end

  defp serve(conn) do
    reply =
      case :gen_tcp.recv(conn, 0, 5_000) do
        {:ok, {:http_request, method, {:abs_path, path}, _version}} ->
          skip_headers(conn)
          route(method, path)

        {:ok, _} ->
          {400, "bad request"}

        {:error, _} ->
          nil
      end

    if reply do
      {status, body} = reply
      :gen_tcp.send(conn, response(status, body))
    end

    :gen_tcp.close(conn)
  end

  defp skip_headers(conn) do
    case :gen_tcp.recv(conn, 0, 5_000) do
      {:ok, {:http_header, _, _, _, _}} -> skip_headers(conn)
      _ -> :ok
    end
  end

  defp route(:GET, path) do
    case path |> String.split("?", parts: 2) |> hd() do
      "/health" -> {200, "ok"}
      _ -> {404, "not found"}
    end
  end

  defp route(_method, _path), do: {404, "not found"}

  defp response(status, body) do
    reason = Map.fetch!(%{200 => "OK", 400 => "Bad Request", 404 => "Not Found"}, status)

    [
      "HTTP/1.1 #{status} #{reason}\r\n",
      "content-type: text/plain\r\n",
      "content-length: #{byte_size(body)}\r\n",
      "connection: close\r\n\r\n",
      body
    ]
  end
end
