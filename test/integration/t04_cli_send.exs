# The C++ command line client: `chat-node send TARGET MESSAGE` and
# `chat-node ping TARGET`, against real Elixir nodes and a C++ moebi.
defmodule ChatIT.T04CliSendTest do
  use ExUnit.Case, async: false
  import ChatIT

  test "send to an Elixir kate: exit 0 and kate prints the message" do
    kate = start_elixir(unique("kate"))
    msg = "Hello kate, from the C++ client #{System.unique_integer([:positive])}"
    r = cli_send(kate.name, msg)
    assert r.status == 0, "chat-node send failed: #{inspect(r)}"
    assert_prints(kate, msg)
    refute "chicken?" in r.stdout
  end

  test "send to an Elixir moebi: exit 0, moebi prints it, the client prints chicken?" do
    moebi = start_elixir(moebi())
    msg = "Hello moebi, from the C++ client #{System.unique_integer([:positive])}"
    r = cli_send(moebi.name, msg)
    assert r.status == 0, "chat-node send failed: #{inspect(r)}"
    assert "chicken?" in r.stdout
    assert_prints(moebi, msg)
  end

  test "send to a C++ moebi: exit 0, moebi prints it, the client prints chicken?" do
    moebi = start_cpp(moebi())
    msg = "Hello C++ moebi, from the C++ client #{System.unique_integer([:positive])}"
    r = cli_send(moebi.name, msg)
    assert r.status == 0, "chat-node send failed: #{inspect(r)}"
    assert "chicken?" in r.stdout
    assert_prints(moebi, msg)
  end

  test "send to the test VM itself (an Elixir node): exit 0 and the message is printed here" do
    msg = "Hello amanda, from the C++ client #{System.unique_integer([:positive])}"
    {r, printed_here} = capture_chat_output(fn -> cli_send(node(), msg) end)
    assert r.status == 0, "chat-node send failed: #{inspect(r)}"
    assert String.split(printed_here, "\n", trim: true) == [msg]
  end

  test "ping an Elixir node: prints pong, exit 0" do
    kate = start_elixir(unique("kate"))
    r = cli_ping(kate.name)
    assert {r.status, r.stdout} == {0, ["pong"]}, inspect(r)
  end

  test "ping a node that does not exist: prints pang, exit 1" do
    r = cli_ping(unique("nobody"))
    assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
  end

  test "send to a node that does not exist: non-zero exit and an error on stderr" do
    r = cli_send(unique("nobody"), "anyone there?")
    assert is_integer(r.status) and r.status != 0, inspect(r)
    assert String.trim(r.stderr) != "", "no error message on stderr: #{inspect(r)}"
  end
end
