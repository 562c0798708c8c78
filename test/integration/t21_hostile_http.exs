# it: hidden
# The web dyno is public (no cookie needed to reach it): issue 17's HTTP rows. Each attack runs
# from an attacker node of its own (bench/hostile/attacks.exs, shared with scripts/bench) while
# this VM calls the node every ~50 ms (GenServer.call :count and GET /health): the calls are
# served throughout, each well inside its 10 s deadline, and memory comes back near where it
# was. Timings are only printed; the figures are scripts/bench's.
Code.require_file("support/hostile_it.exs", __DIR__)

defmodule ChatIT.T21HostileHttpTest do
  use ExUnit.Case, async: false
  import ChatIT
  import ChatIT.Hostile

  defp start_web(opts \\ []) do
    port = free_port()
    args = ["--port", Integer.to_string(port)] ++ Keyword.get(opts, :args, [])
    web = start_cpp(unique("web"), args: args, env: Keyword.get(opts, :env, []))
    {web, port}
  end

  test "CHAT_WEB_TOKEN: the page, the API and the event stream want it; /health does not" do
    token = "tok#{System.unique_integer([:positive])}"
    {web, port} = start_web(env: [{"CHAT_WEB_TOKEN", token}])
    basic = "Basic " <> Base.encode64("anyone:" <> token)

    assert {200, "ok\n"} = Hostile.Http.get(port, "/health", 5_000)

    for path <- ["/", "/nodes", "/status.json", "/events"] do
      {status, _} = Hostile.Http.request(port, "GET", path, "", 2_000, [])
      assert status == 401, "#{path} without the token: #{status}"
    end

    {:ok, sock} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
    :ok = :gen_tcp.send(sock, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    {:ok, head} = :gen_tcp.recv(sock, 0, 5_000)

    assert head =~ ~r/\r\nWWW-Authenticate: Basic realm="chat-node"/i,
           "a browser is asked for the token"

    :gen_tcp.close(sock)

    assert {200, page} = Hostile.Http.get(port, "/", 5_000, [{"Authorization", basic}])
    assert page =~ "<title>chat-node</title>"

    assert {200, _} =
             Hostile.Http.get(port, "/nodes", 5_000, [{"Authorization", "Bearer " <> token}])

    assert {401, _} =
             Hostile.Http.get(port, "/nodes", 5_000, [
               {"Authorization", "Bearer " <> token <> "x"}
             ])

    wrong = "Basic " <> Base.encode64("anyone:" <> token <> "x")
    assert {401, _} = Hostile.Http.get(port, "/nodes", 5_000, [{"Authorization", wrong}])

    # The event stream, as a browser opens it once the user has typed the token.
    {:ok, es} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
    :ok = :gen_tcp.send(es, "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: #{basic}\r\n\r\n")
    {:ok, head} = :gen_tcp.recv(es, 0, 5_000)
    assert head =~ "HTTP/1.1 200 OK"
    assert head =~ "text/event-stream"
    :gen_tcp.close(es)

    refute log_of(web) =~ token, "the token is in the node's log"
  end

  test "POST /messages reaches only nodes of the cluster, and not from another site's page" do
    {web, port} = start_web()
    # This VM is connected to it (it started it and waited for it): a node of the cluster.
    assert Chat.send_message(web.name, "hello web") == nil
    me = Atom.to_string(node())

    assert {200, body} =
             Hostile.Http.post(
               port,
               "/messages",
               ~s({"to": "#{me}", "text": "to amanda"}),
               10_000
             )

    assert body =~ ~s("ok":true)

    assert {200, _} =
             Hostile.Http.post(
               port,
               "/messages",
               ~s({"to": "#{web.name}", "text": "to itself"}),
               10_000
             )

    assert_prints(web, "to itself")

    for to <- [
          "relay@10.255.255.1",
          "madeup#{System.unique_integer([:positive])}@127.0.0.1",
          "x@example.com"
        ] do
      assert {403, body} =
               Hostile.Http.post(port, "/messages", ~s({"to": "#{to}", "text": "relay"}), 10_000)

      assert body =~ "not a node of this cluster"
    end

    refute log_of(web) =~ "cannot connect to",
           "the web node tried to reach a node outside the cluster"

    evil = [{"Origin", "https://evil.example"}]

    assert {403, _} =
             Hostile.Http.post(
               port,
               "/messages",
               ~s({"to": "#{me}", "text": "csrf"}),
               10_000,
               evil
             )

    same = [{"Origin", "http://127.0.0.1:#{port}"}]

    assert {200, _} =
             Hostile.Http.post(
               port,
               "/messages",
               ~s({"to": "#{me}", "text": "same site"}),
               10_000,
               same
             )
  end

  test "event streams that never read are dropped, and what they held is given back" do
    {web, port} = start_web()
    assert Chat.send_message(web.name, "warm up") == nil

    {result, _stats, rss} =
      measured(web, fn a ->
        Hostile.Attacker.run(a, :sse_stalled_posts, [port, 20, 300, web.name, []], 120_000)
      end, http_port: port)

    assert result.statuses == %{200 => 300}, inspect(result)
    # 300 x 2 KB printed, each also sent to every stream (as "in", "out" and "result" events):
    # far more than a stream's 64 KB queue.
    assert result.streams_dropped == 20
    # ASan keeps what is freed in its quarantine and never trims: memory coming back is
    # judged in the plain build.
    if not asan_build?(),
      do:
        assert(
          rss.after < rss.base + 8 * 1024,
          "RSS #{rss.base} kB -> #{rss.after} kB after the streams went"
        )

    assert log_of(web) =~ "http: listening on port"
  end

  test "idle /events connections past the caps are refused; /health and the node keep working" do
    {web, port} =
      start_web(args: ["--http-max-connections", "200", "--http-max-per-client", "20"])

    # The probe's /health comes from the attacker's address: one that lands in the burst may be
    # the connection the cap closes (no room, or the oldest still sending its request), as with
    # any capped server. What must hold is that the next ones are served.
    {result, _stats, rss} =
      measured(web, fn a -> Hostile.Attacker.run(a, :idle_events, [port, 400], 120_000) end,
        http_port: port,
        tolerate: fn
          {:error, {:no_answer, ""}} -> true
          _ -> false
        end
      )

    # One address: at most 20 of its streams are kept.
    assert result.refused >= 380, inspect(result)
    assert rss.peak < rss.base + 16 * 1024
    assert log_of(web) =~ "http: refusing connections"
    # The streams of the attacker went with it: new ones are served again.
    sock = Hostile.Http.stalled(port, "/events")
    {:ok, head} = :gen_tcp.recv(sock, 0, 5_000)
    assert head =~ "HTTP/1.1 200 OK"
    :gen_tcp.close(sock)
  end

  test "a slowloris holding every connection slot does not keep /health out" do
    {web, port} = start_web(args: ["--http-max-connections", "50"])

    {_, _stats, _rss} =
      measured(web, fn _a ->
        # Requests that never end, from this VM, beyond the limit: the oldest make room.
        socks =
          for _ <- 1..120 do
            {:ok, s} = :gen_tcp.connect({127, 0, 0, 1}, port, [:binary, active: false])
            :ok = :gen_tcp.send(s, "GET /health HTTP/1.1\r\nX-Slow: ")
            s
          end

        for _ <- 1..10, do: assert({200, "ok\n"} = Hostile.Http.get(port, "/health", 5_000))
        Enum.each(socks, &:gen_tcp.close/1)
        :ok
      end, http_port: port)
  end
end
