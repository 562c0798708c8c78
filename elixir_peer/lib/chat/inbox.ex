defmodule Chat.Inbox do
  @moduledoc """
  Process registered locally as `Chat`.

  Any binary sent to it (`send({Chat, node}, "text")`) is printed on
  stdout. It is a member of the pg group `Chat` (default scope), which is
  how `Chat.broadcast/1` reaches every chat node, C++ ones included. `GenServer.call({Chat, node}, :count)` returns how many binaries
  have been printed since the node started, which lets a sender find out
  that a burst of plain sends has been processed (the call is answered
  only after all earlier messages from the same sender).
  """

  use GenServer

  def start_link(_opts) do
    GenServer.start_link(__MODULE__, 0, name: Chat)
  end

  @impl true
  def init(count) do
    :ok = :pg.join(Chat, self())
    {:ok, count}
  end

  @impl true
  def handle_info(text, count) when is_binary(text) do
    IO.puts(text)
    {:noreply, count + 1}
  end

  def handle_info(_other, count), do: {:noreply, count}

  @impl true
  def handle_call(:count, _from, count), do: {:reply, count, count}
end
