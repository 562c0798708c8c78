# The "lesson" variant of the chat app (test/lesson_chat) on a real Elixir
# node calls Chat.send_message/2 to C++ nodes. It chooses
# receive_message_for_moebi/2 itself when the recipient is moebi@..., so the
# C++ node must serve both receive_message/1 and receive_message_for_moebi/2.
defmodule ChatIT.T03LessonVariantTest do
  use ExUnit.Case, async: false
  import ChatIT

  setup_all do
    %{
      kate: start_cpp(unique("kate")),
      moebi: start_cpp(moebi()),
      lesson: start_elixir(unique("lesson"), variant: :lesson)
    }
  end

  # Runs Chat.send_message on the lesson node, as if typed in its iex.
  defp lesson_send(lesson, target, msg) do
    :rpc.call(lesson.name, Chat, :send_message, [target, msg], 15_000)
  end

  test "lesson node -> C++ kate: returns :ok and kate prints the message", ctx do
    msg = "lesson says hi to kate #{System.unique_integer([:positive])}"
    chickens = Enum.count(lines(ctx.lesson), &(&1 == "chicken?"))
    assert lesson_send(ctx.lesson, ctx.kate.name, msg) == :ok
    assert_prints(ctx.kate, msg)
    barrier(ctx.kate)
    assert count(ctx.kate, msg) == 1
    # kate is no moebi: no "chicken?" comes back.
    barrier_rpc(ctx.lesson)
    assert Enum.count(lines(ctx.lesson), &(&1 == "chicken?")) == chickens
  end

  test "lesson node -> C++ moebi: returns :ok, moebi prints it, \"chicken?\" is printed on the lesson node",
       ctx do
    msg = "lesson says hi to moebi #{System.unique_integer([:positive])}"
    before = Enum.count(lines(ctx.lesson), &(&1 == "chicken?"))
    assert lesson_send(ctx.lesson, ctx.moebi.name, msg) == :ok
    assert_prints(ctx.moebi, msg)

    wait_until(
      fn -> Enum.count(lines(ctx.lesson), &(&1 == "chicken?")) == before + 1 end,
      10_000,
      "chicken? on the lesson node"
    )
  end
end
