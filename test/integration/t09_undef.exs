# A task for a function that does not exist: the caller must get an exit with
# reason {:undef, [{Chat, :no_such_fun, [], _} | _]}, promptly.
defmodule ChatIT.T09UndefTest do
  use ExUnit.Case, async: false
  import ChatIT

  setup_all do
    %{kate: start_cpp(unique("kate"))}
  end

  test "Task.Supervisor.async from a trapping process: DOWN and EXIT with {:undef, ...}", %{
    kate: kate
  } do
    parent = self()

    spawn(fn ->
      Process.flag(:trap_exit, true)
      task = Task.Supervisor.async({Chat.TaskSupervisor, kate.name}, Chat, :no_such_fun, [])
      yielded = Task.yield(task, 5_000)

      linked =
        receive do
          {:EXIT, pid, reason} when pid == task.pid -> {:EXIT, reason}
        after
          5_000 -> :no_exit_signal
        end

      send(parent, {:undef_result, task.pid, yielded, linked})
    end)

    assert_receive {:undef_result, pid, yielded, linked}, 15_000
    assert node(pid) == kate.name
    assert {:exit, reason} = yielded, "Task.yield gave #{inspect(yielded)}"
    assert {:undef, [{Chat, :no_such_fun, [], _} | _]} = reason
    assert linked == {:EXIT, reason}, "link exit signal: #{inspect(linked)}"
  end

  test "Task.Supervisor.async_nolink: Task.yield gives {:exit, {:undef, ...}}", %{kate: kate} do
    task = Task.Supervisor.async_nolink({Chat.TaskSupervisor, kate.name}, Chat, :no_such_fun, [])
    assert {:exit, reason} = Task.yield(task, 5_000) || Task.shutdown(task)
    assert {:undef, [{Chat, :no_such_fun, [], _} | _]} = reason
  end

  test "a wrong arity is undef too, with the arguments in the reason", %{kate: kate} do
    task =
      Task.Supervisor.async_nolink({Chat.TaskSupervisor, kate.name}, Chat, :receive_message, [
        1,
        2,
        3
      ])

    assert {:exit, reason} = Task.yield(task, 5_000) || Task.shutdown(task)
    assert {:undef, [{Chat, :receive_message, [1, 2, 3], _} | _]} = reason
  end

  test "the node keeps serving after undef tasks", %{kate: kate} do
    for _ <- 1..3 do
      task =
        Task.Supervisor.async_nolink({Chat.TaskSupervisor, kate.name}, Chat, :no_such_fun, [])

      assert {:exit, {:undef, _}} = Task.yield(task, 5_000) || Task.shutdown(task)
    end

    assert Chat.send_message(kate.name, "still serving") == nil
    assert_prints(kate, "still serving")
  end
end
