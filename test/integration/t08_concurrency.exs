# Many concurrent Chat.send_message calls to one C++ node.
defmodule ChatIT.T08ConcurrencyTest do
  use ExUnit.Case, async: false
  import ChatIT

  @n 200

  test "#{@n} concurrent Chat.send_message calls: all return nil, each message printed exactly once" do
    kate = start_cpp(unique("kate"))
    # Connect first, so that the calls race each other and not the handshake.
    assert Node.ping(kate.name) == :pong
    tag = "burst#{System.unique_integer([:positive])}"
    msgs = for i <- 1..@n, do: "#{tag} message #{i}"

    results =
      msgs
      |> Task.async_stream(fn m -> Chat.send_message(kate.name, m) end,
        max_concurrency: @n,
        timeout: 30_000,
        ordered: true
      )
      |> Enum.map(fn {:ok, v} -> v end)

    assert Enum.all?(results, &is_nil/1), "unexpected results: #{inspect(Enum.uniq(results))}"

    Enum.each(msgs, &assert_prints(kate, &1))
    barrier(kate)

    printed = Enum.filter(lines(kate), &String.starts_with?(&1, tag))
    freq = Enum.frequencies(printed)
    assert map_size(freq) == @n

    assert Enum.all?(msgs, &(freq[&1] == 1)),
           "duplicates: #{inspect(Enum.filter(freq, fn {_, c} -> c != 1 end))}"

    assert length(printed) == @n
  end

  test "concurrent calls while a moebi answers every one of them" do
    moebi = start_cpp(moebi())
    assert Node.ping(moebi.name) == :pong
    tag = "moebi-burst#{System.unique_integer([:positive])}"
    msgs = for i <- 1..50, do: "#{tag} #{i}"

    {results, printed_here} =
      capture_chat_output(fn ->
        msgs
        |> Task.async_stream(fn m -> Chat.send_message(moebi.name, m) end,
          max_concurrency: 50,
          timeout: 30_000
        )
        |> Enum.map(fn {:ok, v} -> v end)
      end)

    assert Enum.all?(results, &is_nil/1), inspect(Enum.uniq(results))
    assert String.split(printed_here, "\n", trim: true) == List.duplicate("chicken?", 50)
    Enum.each(msgs, &assert_prints(moebi, &1))
  end
end
