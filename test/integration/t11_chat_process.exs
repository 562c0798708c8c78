# The registered Chat process on the C++ node: binaries sent to it are
# printed, and GenServer.call({Chat, node}, :count) says how many.
defmodule ChatIT.T11ChatProcessTest do
  use ExUnit.Case, async: false
  import ChatIT

  test "binaries sent to {Chat, node} are printed and counted" do
    kate = start_cpp(unique("kate"))
    assert GenServer.call({Chat, kate.name}, :count, 10_000) == 0
    tag = "inbox#{System.unique_integer([:positive])}"
    msgs = for i <- 1..3, do: "#{tag} #{i}"
    Enum.each(msgs, &send({Chat, kate.name}, &1))
    Enum.each(msgs, &assert_prints(kate, &1))
    assert GenServer.call({Chat, kate.name}, :count, 10_000) == 3
    assert Enum.filter(lines(kate), &String.starts_with?(&1, tag)) == msgs
  end
end
