defmodule Chat do
  @moduledoc """
  Node-to-node chat, "lesson" variant (as written in the original
  tutorial), kept as a test peer for the C++ node.

  Unlike the seed variant, the *sender* decides whether a reply is
  expected: messages addressed to a `moebi@...` node are delivered through
  `receive_message_for_moebi/2`, which prints the message and answers the
  sender with `"chicken?"`; everything else goes through
  `receive_message/1`.
  """

  def receive_message(message) do
    IO.puts(message)
  end

  def receive_message_for_moebi(message, from) do
    IO.puts(message)
    send_message(from, "chicken?")
  end

  def send_message(recipient, message) do
    if String.starts_with?(Atom.to_string(recipient), "moebi@") do
      spawn_task(__MODULE__, :receive_message_for_moebi, recipient, [message, Node.self()])
    else
      spawn_task(__MODULE__, :receive_message, recipient, [message])
    end
  end

  def spawn_task(module, fun, recipient, args) do
    recipient
    |> remote_supervisor()
    |> Task.Supervisor.async(module, fun, args)
    |> Task.await()
  end

  defp remote_supervisor(recipient) do
    {Chat.TaskSupervisor, recipient}
  end
end
