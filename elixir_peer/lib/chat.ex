defmodule Chat do
  @moduledoc """
  Node-to-node chat, "seed" variant.

  A message is delivered by starting a task on the recipient's
  `Chat.TaskSupervisor` and waiting for it. The task prints the message on
  the recipient's standard output. A node whose name begins with `moebi@`
  replies to every message with `"chicken?"`, sent back the same way, so
  the reply shows up on the sender's console before `send_message/2`
  returns.

  The exact call shape (module, function, arguments) is part of the wire
  protocol: the C++ node implements the same thing and both sides must
  agree.
  """

  @doc """
  Sends `message` to the node `recipient` and waits for it to be handled.

  Returns `nil` for an ordinary recipient; for `moebi@...` it returns
  whatever the reply returned on our side (also `nil` unless we are moebi).
  """
  def send_message(recipient, message) do
    spawn_task(__MODULE__, :receive_message, recipient, [message, Node.self()])
  end

  @doc """
  Runs `apply(module, fun, args)` as a task under the recipient's task
  supervisor and waits for the result.
  """
  def spawn_task(module, fun, recipient, args) do
    recipient
    |> remote_supervisor()
    |> Task.Supervisor.async(module, fun, args)
    |> Task.await()
  end

  @doc """
  Called on the recipient node: prints the message and, on moebi, answers
  the sender.
  """
  def receive_message(message, from) do
    IO.puts(message)

    if String.starts_with?(Atom.to_string(Node.self()), "moebi@") do
      send_message(from, "chicken?")
    end
  end

  @doc """
  Sends `message` to every chat node's inbox: the members of the pg group
  `Chat`, on Elixir and C++ nodes alike. Each prints it once. Returns `:ok`.
  """
  def broadcast(message) do
    for pid <- :pg.get_members(Chat), do: send(pid, message)
    :ok
  end

  defp remote_supervisor(recipient) do
    {Chat.TaskSupervisor, recipient}
  end
end
