# An OS process started by a test (a node, a CLI run): its output lines, exit status and
# signals, and waiting for a line or the exit with a deadline. Loaded by chat_it.exs.

defmodule ChatIT.OsProc do
  @moduledoc """
  Owns one OS process started through a port. Keeps every line it writes on
  stdout (echoed to the test log as `[label] line`), sends its stderr to a
  file in IT_TMPDIR, and records its exit status. Callers can wait for a line
  or for the exit without polling.
  """
  use GenServer

  def start(label, exe, args, env \\ []) do
    GenServer.start(__MODULE__, {label, exe, args, env})
  end

  def os_pid(p), do: GenServer.call(p, :os_pid)
  def lines(p), do: GenServer.call(p, :lines)
  def status(p), do: GenServer.call(p, :status)
  def stderr_path(p), do: GenServer.call(p, :stderr_path)

  @doc "Waits for a line equal to `want` (a string) or accepted by `want` (a fun)."
  def await_line(p, want, timeout) do
    GenServer.call(p, {:await_line, want, timeout}, :infinity)
  end

  @doc "Waits for the process to exit; returns {:ok, status} or :timeout."
  def await_exit(p, timeout) do
    GenServer.call(p, {:await_exit, timeout}, :infinity)
  end

  @doc "Sends a signal (\"TERM\", \"KILL\", \"INT\", ...) unless it already exited."
  def signal(p, sig), do: GenServer.call(p, {:signal, sig})

  @doc "TERM, then KILL after `grace` ms; returns the exit status (or :unknown)."
  def stop(p, grace \\ 5_000) do
    result =
      case status(p) do
        nil ->
          signal(p, "TERM")

          case await_exit(p, grace) do
            {:ok, s} ->
              s

            :timeout ->
              signal(p, "KILL")

              case await_exit(p, 5_000) do
                {:ok, s} -> {:killed, s}
                :timeout -> :unknown
              end
          end

        s ->
          s
      end

    GenServer.stop(p)
    result
  end

  # -- server --------------------------------------------------------------

  @impl true
  def init({label, exe, args, env}) do
    dir = System.get_env("IT_TMPDIR") || System.tmp_dir!()
    stderr = Path.join(dir, "#{label}-#{System.unique_integer([:positive])}.stderr")
    # /bin/sh only redirects stderr and then execs the program, so the pid
    # the port reports is the program's own.
    wrapper = ~S(err="$1"; shift; exec "$@" 2>>"$err")

    port =
      Port.open({:spawn_executable, "/bin/sh"}, [
        :binary,
        :exit_status,
        :hide,
        {:line, 1_048_576},
        {:env, for({k, v} <- env, do: {String.to_charlist(k), String.to_charlist(v)})},
        args: ["-c", wrapper, "sh", stderr, exe | args]
      ])

    # nil if the program already exited (and the port closed) by now; its
    # output and exit status are still in our mailbox.
    os_pid =
      case Port.info(port, :os_pid) do
        {:os_pid, pid} -> pid
        nil -> nil
      end

    {:ok,
     %{
       label: label,
       port: port,
       os_pid: os_pid,
       stderr: stderr,
       lines: [],
       partial: "",
       status: nil,
       line_waiters: [],
       exit_waiters: []
     }}
  end

  @impl true
  def handle_call(:os_pid, _from, s), do: {:reply, s.os_pid, s}
  def handle_call(:lines, _from, s), do: {:reply, Enum.reverse(s.lines), s}
  def handle_call(:status, _from, s), do: {:reply, s.status, s}
  def handle_call(:stderr_path, _from, s), do: {:reply, s.stderr, s}

  def handle_call({:signal, sig}, _from, s) do
    if s.status == nil and s.os_pid != nil do
      System.cmd("kill", ["-#{sig}", Integer.to_string(s.os_pid)], stderr_to_stdout: true)
    end

    {:reply, :ok, s}
  end

  def handle_call({:await_line, want, timeout}, from, s) do
    cond do
      Enum.any?(s.lines, &match_line?(want, &1)) ->
        {:reply, :ok, s}

      s.status != nil ->
        {:reply, {:error, {:exited, s.status}}, s}

      true ->
        ref = make_ref()
        Process.send_after(self(), {:line_timeout, ref}, timeout)
        {:noreply, %{s | line_waiters: [{ref, from, want} | s.line_waiters]}}
    end
  end

  def handle_call({:await_exit, timeout}, from, s) do
    if s.status != nil do
      {:reply, {:ok, s.status}, s}
    else
      ref = make_ref()
      Process.send_after(self(), {:exit_timeout, ref}, timeout)
      {:noreply, %{s | exit_waiters: [{ref, from} | s.exit_waiters]}}
    end
  end

  @impl true
  def handle_info({port, {:data, {:eol, chunk}}}, %{port: port} = s) do
    {:noreply, add_line(%{s | partial: ""}, s.partial <> chunk)}
  end

  def handle_info({port, {:data, {:noeol, chunk}}}, %{port: port} = s) do
    {:noreply, %{s | partial: s.partial <> chunk}}
  end

  def handle_info({port, {:exit_status, status}}, %{port: port} = s) do
    s = if s.partial != "", do: add_line(%{s | partial: ""}, s.partial), else: s
    IO.puts("[#{s.label}] (exited with status #{status})")
    Enum.each(s.exit_waiters, fn {_, from} -> GenServer.reply(from, {:ok, status}) end)

    Enum.each(s.line_waiters, fn {_, from, _} ->
      GenServer.reply(from, {:error, {:exited, status}})
    end)

    {:noreply, %{s | status: status, exit_waiters: [], line_waiters: []}}
  end

  def handle_info({:line_timeout, ref}, s) do
    {hit, rest} = Enum.split_with(s.line_waiters, fn {r, _, _} -> r == ref end)
    Enum.each(hit, fn {_, from, _} -> GenServer.reply(from, {:error, :timeout}) end)
    {:noreply, %{s | line_waiters: rest}}
  end

  def handle_info({:exit_timeout, ref}, s) do
    {hit, rest} = Enum.split_with(s.exit_waiters, fn {r, _} -> r == ref end)
    Enum.each(hit, fn {_, from} -> GenServer.reply(from, :timeout) end)
    {:noreply, %{s | exit_waiters: rest}}
  end

  def handle_info(_other, s), do: {:noreply, s}

  defp add_line(s, line) do
    IO.puts("[#{s.label}] #{line}")

    {done, waiting} =
      Enum.split_with(s.line_waiters, fn {_, _, want} -> match_line?(want, line) end)

    Enum.each(done, fn {_, from, _} -> GenServer.reply(from, :ok) end)
    %{s | lines: [line | s.lines], line_waiters: waiting}
  end

  defp match_line?(want, line) when is_binary(want), do: want == line
  defp match_line?(want, line) when is_function(want, 1), do: want.(line)
end
