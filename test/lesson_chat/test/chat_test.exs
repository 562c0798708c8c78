defmodule ChatTest do
  use ExUnit.Case

  test "a non-moebi recipient gets receive_message/1, which returns :ok" do
    assert Chat.send_message(node(), "local hello") == :ok
  end
end
