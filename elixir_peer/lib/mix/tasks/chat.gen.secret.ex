defmodule Mix.Tasks.Chat.Gen.Secret do
  @shortdoc "Prints a random distribution cookie"

  @moduledoc """
  Prints a random string usable as an Erlang distribution cookie.

      mix chat.gen.secret           # 64 characters
      mix chat.gen.secret LENGTH    # LENGTH characters, at least 32

  Characters come from `A-Z a-z 0-9 _ -` and are drawn from
  `:crypto.strong_rand_bytes/1`.
  """

  use Mix.Task

  @alphabet List.to_tuple(~c"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
  @size tuple_size(@alphabet)
  # Bytes at or above this value are thrown away, so that every remaining
  # byte value maps onto the same number of alphabet entries. With 64
  # characters this is 256 and nothing is ever rejected.
  @limit 256 - rem(256, @size)
  @min_length 32
  @default_length 64

  @impl Mix.Task
  def run(args) do
    length =
      case args do
        [] -> @default_length
        [arg] -> parse_length(arg)
        _ -> Mix.raise("usage: mix chat.gen.secret [LENGTH]")
      end

    Mix.shell().info(generate(length))
  end

  @doc "Returns a random secret of `length` characters."
  def generate(length) when is_integer(length) and length >= @min_length do
    length |> take([]) |> List.to_string()
  end

  defp parse_length(arg) do
    case Integer.parse(arg) do
      {n, ""} when n >= @min_length ->
        n

      {_, ""} ->
        Mix.raise("LENGTH must be at least #{@min_length}, got: #{arg}")

      _ ->
        Mix.raise("LENGTH must be an integer, got: #{inspect(arg)}")
    end
  end

  # Draws `missing` more characters, asking for fresh random bytes again if
  # some were rejected.
  defp take(0, acc), do: acc

  defp take(missing, acc) do
    fresh =
      for <<byte <- :crypto.strong_rand_bytes(missing)>>, byte < @limit do
        elem(@alphabet, rem(byte, @size))
      end

    take(missing - length(fresh), fresh ++ acc)
  end
end
