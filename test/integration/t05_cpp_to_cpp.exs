# C++ to C++: the command line client talking to C++ server nodes.
defmodule ChatIT.T05CppToCppTest do
  use ExUnit.Case, async: false
  import ChatIT

  setup_all do
    %{kate: start_cpp(unique("kate")), moebi: start_cpp(moebi())}
  end

  test "chat-node send to a C++ kate: exit 0 and kate prints the message", %{kate: kate} do
    msg = "C++ to C++ #{System.unique_integer([:positive])}"
    r = cli_send(kate.name, msg)
    assert r.status == 0, "chat-node send failed: #{inspect(r)}"
    refute "chicken?" in r.stdout
    assert_prints(kate, msg)
    barrier(kate)
    assert count(kate, msg) == 1
  end

  test "chat-node send to a C++ moebi: the client prints chicken?", %{moebi: moebi} do
    msg = "C++ to C++ moebi #{System.unique_integer([:positive])}"
    r = cli_send(moebi.name, msg)
    assert r.status == 0, "chat-node send failed: #{inspect(r)}"
    assert "chicken?" in r.stdout
    assert_prints(moebi, msg)
  end

  test "chat-node ping a C++ node: pong", %{kate: kate} do
    r = cli_ping(kate.name)
    assert {r.status, r.stdout} == {0, ["pong"]}, inspect(r)
  end

  test "several clients one after another reuse the server", %{kate: kate} do
    tag = "client-run-#{System.unique_integer([:positive])}"

    for i <- 1..3 do
      r = cli_send(kate.name, "#{tag} #{i}")
      assert r.status == 0, inspect(r)
    end

    barrier(kate)

    assert Enum.filter(lines(kate), &String.starts_with?(&1, tag)) ==
             for(i <- 1..3, do: "#{tag} #{i}")
  end
end
