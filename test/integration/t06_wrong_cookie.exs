# Cookies: a C++ node with another cookie refuses the handshake in both
# directions, the client fails fast with an error, and the node keeps serving
# the nodes that do know its cookie.
defmodule ChatIT.T06WrongCookieTest do
  use ExUnit.Case, async: false
  import ChatIT

  defp other_cookie, do: "other#{System.unique_integer([:positive])}x#{:rand.uniform(1_000_000)}"

  test "Node.ping of a C++ node that has another cookie answers :pang" do
    kate = start_cpp(unique("kate"), cookie: other_cookie())
    assert within(20_000, "Node.ping", fn -> Node.ping(kate.name) end) == :pang
    refute kate.name in Node.list()
  end

  test "chat-node ping with a wrong cookie to an Elixir node: pang, exit 1" do
    r = cli_ping(node(), cookie: other_cookie())
    assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
  end

  test "chat-node send with a wrong cookie fails quickly, non-zero, with an error on stderr" do
    kate = start_cpp(unique("kate"), cookie: other_cookie())
    msg = "must not arrive #{System.unique_integer([:positive])}"

    # to a C++ node (the client uses the test VM's cookie, kate has another one)
    r = cli_send(kate.name, msg, timeout: 20_000)
    assert is_integer(r.status) and r.status != 0, "expected a failure: #{inspect(r)}"
    assert String.trim(r.stderr) != "", "no error message on stderr: #{inspect(r)}"
    refute msg in lines(kate)

    # to an Elixir node (the test VM)
    {r2, printed_here} =
      capture_chat_output(fn -> cli_send(node(), msg, cookie: other_cookie(), timeout: 20_000) end)

    assert is_integer(r2.status) and r2.status != 0, "expected a failure: #{inspect(r2)}"
    assert String.trim(r2.stderr) != "", "no error message on stderr: #{inspect(r2)}"
    assert printed_here == ""
  end

  test "after refused handshakes the node still serves nodes with the right cookie" do
    cookie = other_cookie()
    kate = start_cpp(unique("kate"), cookie: cookie)

    assert within(20_000, "Node.ping", fn -> Node.ping(kate.name) end) == :pang
    r = cli_send(kate.name, "wrong cookie", timeout: 20_000)
    assert r.status != 0, inspect(r)

    # Now use kate's cookie for kate only; the test VM keeps its own.
    true = Node.set_cookie(kate.name, String.to_atom(cookie))
    assert within(20_000, "Node.ping", fn -> Node.ping(kate.name) end) == :pong
    msg = "right cookie #{System.unique_integer([:positive])}"
    assert Chat.send_message(kate.name, msg) == nil
    assert_prints(kate, msg)

    r = cli_send(kate.name, msg <> " via the client", cookie: cookie)
    assert r.status == 0, inspect(r)
    assert_prints(kate, msg <> " via the client")
  end

  test "the cookie can come from ERLANG_COOKIE instead of --cookie" do
    kate = start_cpp(unique("kate"), cookie: :from_env)
    assert within(20_000, "Node.ping", fn -> Node.ping(kate.name) end) == :pong
    assert Chat.send_message(kate.name, "cookie from the environment") == nil
    assert_prints(kate, "cookie from the environment")
  end
end
