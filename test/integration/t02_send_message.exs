# Chat.send_message/2 from a real Elixir node (the test VM, "amanda") to C++
# nodes: a plain one (kate) and a moebi, which answers "chicken?".
defmodule ChatIT.T02SendMessageTest do
  use ExUnit.Case, async: false
  import ChatIT

  setup_all do
    %{kate: start_cpp(unique("kate"))}
  end

  test "to kate: returns nil and kate prints the message exactly once", %{kate: kate} do
    msg = "Hello kate, this is amanda (#{System.unique_integer([:positive])})"
    assert within(15_000, "Chat.send_message", fn -> Chat.send_message(kate.name, msg) end) == nil
    assert_prints(kate, msg)
    barrier(kate)
    assert count(kate, msg) == 1
  end

  test "to kate: nothing is printed back on the caller", %{kate: kate} do
    msg = "no reply expected #{System.unique_integer([:positive])}"
    {result, printed_here} = capture_chat_output(fn -> Chat.send_message(kate.name, msg) end)
    assert result == nil
    assert printed_here == ""
    assert_prints(kate, msg)
  end

  test "to kate: non-ASCII text arrives unchanged", %{kate: kate} do
    msg = "héllo wörld ✓ 日本語 🐔 #{System.unique_integer([:positive])}"
    assert Chat.send_message(kate.name, msg) == nil
    assert_prints(kate, msg)
  end

  test "to kate: messages sent one after another are printed in order", %{kate: kate} do
    tag = "seq#{System.unique_integer([:positive])}"
    msgs = for i <- 1..5, do: "#{tag} message #{i}"
    for m <- msgs, do: assert(Chat.send_message(kate.name, m) == nil)
    barrier(kate)
    assert Enum.filter(lines(kate), &String.starts_with?(&1, tag)) == msgs
  end

  test "to moebi: \"chicken?\" is printed on the caller before send_message returns" do
    moebi = start_cpp(moebi())
    msg = "Hi moebi, amanda here (#{System.unique_integer([:positive])})"

    {result, printed_here} =
      capture_chat_output(fn ->
        within(15_000, "Chat.send_message to moebi", fn -> Chat.send_message(moebi.name, msg) end)
      end)

    assert result == nil
    assert String.split(printed_here, "\n", trim: true) == ["chicken?"]
    assert_prints(moebi, msg)
    assert count(moebi, msg) == 1
  end
end
