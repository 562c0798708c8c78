# it: tls
# TLS distribution (-proto_dist inet_tls) between real BEAM nodes and C++ nodes, every one with
# a certificate from the same CA and the same optfile (run.sh makes them with chat-node tls-ca
# and tls-cert; this VM, amanda, runs on inet_tls with that optfile). Above TLS the
# distribution is what it is over TCP: Chat.send_message with moebi's "chicken?", Node.ping,
# :erpc, many calls at once, C++ → BEAM and C++ → C++, the cookie still checked, and the kernel
# services (global's mesh and :global.sync, chat-node broadcast) with every connection on TLS.
defmodule ChatIT.T19TlsTest do
  use ExUnit.Case, async: false
  import ChatIT

  @n 100

  # The optfile of the test with `extra` options added to both sides.
  defp optfile_with(name, extra) do
    text = File.read!(tls_optfile())
    path = Path.join(tls_dir(), name)
    File.write!(path, String.replace(text, "{verify, verify_peer}", "{verify, verify_peer}, " <> extra))
    path
  end

  defp connected_line(node, peer) do
    log(node)
    |> String.split("\n")
    |> Enum.find(&String.contains?(&1, "connected to #{peer}"))
  end

  test "this VM runs TLS distribution, and a C++ node says it does too" do
    assert :init.get_argument(:proto_dist) == {:ok, [[~c"inet_tls"]]}
    kate = start_cpp(unique("kate"))
    assert log(kate) =~ "distribution over TLS (inet_tls) from ssl_dist_optfile #{tls_optfile()}"
    assert Node.ping(kate.name) == :pong
    line = wait_until(fn -> connected_line(kate, node()) end, 5_000, "kate's connection log line")
    assert line =~ ~r/\(incoming, TLSv1\.[23] \S+, peer \/CN=127\.0\.0\.1\)/
  end

  test "BEAM → C++ moebi: Chat.send_message, with \"chicken?\" printed here before it returns" do
    moebi = start_cpp(moebi())
    msg = "Hi moebi, over TLS (#{System.unique_integer([:positive])})"

    {result, printed_here} =
      capture_chat_output(fn ->
        within(15_000, "Chat.send_message to moebi", fn -> Chat.send_message(moebi.name, msg) end)
      end)

    assert result == nil
    assert String.split(printed_here, "\n", trim: true) == ["chicken?"]
    assert_prints(moebi, msg)
    assert count(moebi, msg) == 1
  end

  test "Node.ping and :erpc.call into a C++ node" do
    kate = start_cpp(unique("kate"))
    assert Node.ping(kate.name) == :pong
    assert :erpc.call(kate.name, :erlang, :node, [], 10_000) == kate.name
    assert node() in :erpc.call(kate.name, Node, :list, [], 10_000)
    assert {:badrpc, {:EXIT, {:undef, _}}} = :rpc.call(kate.name, Chat, :nope, [], 10_000)
  end

  test "#{@n} concurrent Chat.send_message calls, each printed once" do
    kate = start_cpp(unique("kate"))
    tag = "tls-many-#{System.unique_integer([:positive])}"
    msgs = for i <- 1..@n, do: "#{tag} #{i}"

    results =
      msgs
      |> Task.async_stream(fn m -> Chat.send_message(kate.name, m) end,
        max_concurrency: @n,
        timeout: 30_000
      )
      |> Enum.map(fn {:ok, r} -> r end)

    assert Enum.all?(results, &is_nil/1)
    barrier(kate)
    for m <- msgs, do: assert(count(kate, m) == 1, "#{m} printed #{count(kate, m)} times")
  end

  test "a megabyte message crosses TLS whole" do
    kate = start_cpp(unique("kate"))
    big = String.duplicate("0123456789abcdef", 65_536)
    assert GenServer.call({Chat, kate.name}, :count, 10_000) == 0
    send({Chat, kate.name}, big)
    assert GenServer.call({Chat, kate.name}, :count, 10_000) == 1
    assert_prints(kate, big)
  end

  test "C++ → BEAM: chat-node send and ping reach an Elixir node on inet_tls" do
    alex = start_elixir(unique("alex"))
    msg = "C++ to Elixir over TLS #{System.unique_integer([:positive])}"
    r = cli_send(alex.name, msg)
    assert r.status == 0, inspect(r)
    assert_prints(alex, msg)
    r = cli_ping(alex.name)
    assert {r.status, r.stdout} == {0, ["pong"]}, inspect(r)
  end

  test "C++ → C++: send to a moebi (chicken? on the client), ping" do
    moebi = start_cpp(moebi())
    msg = "C++ to C++ over TLS #{System.unique_integer([:positive])}"
    r = cli_send(moebi.name, msg)
    assert r.status == 0, inspect(r)
    assert_prints(moebi, msg)
    r = cli_ping(moebi.name, log_level: "info")
    assert {r.status, r.stdout} == {0, ["pong"]}, inspect(r)
    assert r.stderr =~ ~r/connected to #{moebi.name} \(outgoing, TLSv1\.3 /
  end

  test "TLS 1.3 and TLS 1.2, as the peers negotiate them" do
    kate = start_cpp(unique("kate"))

    # This VM offers only what its OTP's inet_tls_dist offers by default (TLS 1.2 before OTP
    # 29), so each peer keeps 1.2 too, to be reachable from here.
    for {version, text} <- [{"['tlsv1.3', 'tlsv1.2']", "TLSv1.3"}, {"['tlsv1.2']", "TLSv1.2"}] do
      optfile = optfile_with("v#{text}.conf", "{versions, #{version}}")
      peer = start_elixir(unique("v"), tls: optfile)
      code = "Chat.send_message(#{inspect(kate.name)}, \"over #{text}\")"
      assert {nil, _} = :rpc.call(peer.name, Code, :eval_string, [code], 15_000)
      assert_prints(kate, "over #{text}")
      line = wait_until(fn -> connected_line(kate, peer.name) end, 5_000, "kate's log line for #{text}")
      assert line =~ "(incoming, #{text} "
      # And C++ → BEAM in the same version.
      r = cli_ping(peer.name, tls: optfile, log_level: "info")
      assert r.status == 0, inspect(r)
      assert r.stderr =~ "(outgoing, #{text} "
    end
  end

  test "the cookie handshake still runs inside TLS: a wrong cookie is refused" do
    kate = start_cpp(unique("kate"), cookie: "another-cookie-#{System.unique_integer([:positive])}")
    assert Node.ping(kate.name) == :pang
    wait_until(fn -> log(kate) =~ "wrong cookie" end, 5_000, "kate's wrong-cookie log line")
    r = cli_ping(kate.name)
    assert r.status == 1, inspect(r)
  end

  # The connections `node` logged as up: peer => the rest of its "connected to" line.
  defp connections(node) do
    for line <- String.split(log(node), "\n"),
        [_, peer, rest] <- [Regex.run(~r/connected to (\S+) \((.*)\)\s*$/, line)],
        into: %{},
        do: {String.to_atom(peer), rest}
  end

  test "kernel services over TLS: net_kernel:connect_node from C++, global's mesh, :global.sync, chat-node broadcast" do
    k1 = start_cpp(unique("kate"))
    k2 = start_cpp(unique("kate"))
    e1 = start_elixir(unique("alex"))
    e2 = start_elixir(unique("alex"))
    names = [k1.name, k2.name, e1.name, e2.name]
    # This VM (visible here) connects to each node, one after another: global meshes the
    # rest, with simultaneous connections on the way (the greater name's wins; the other side
    # must hear "nok" inside TLS and wait, or its global disconnects everyone to prevent
    # overlapping partitions). k1 ↔ k2 can only be made by a C++ node, global's
    # net_kernel:connect_node, when it hears of the other.
    for n <- names, do: assert(Node.ping(n) == :pong)
    wait_mesh(names, 30_000)
    for n <- names, do: assert(global_sync(n) == :ok)
    assert rpc(k1.name, :global, :register_name, [:tls_kate, rpc(k1.name, :erlang, :whereis, [Chat])]) == :yes
    wait_until(fn -> is_pid(rpc(e2.name, :global, :whereis_name, [:tls_kate])) end, 5_000, ":tls_kate on alex")

    # Every connection of a C++ node, made by either side, is up over TLS.
    for k <- [k1, k2] do
      conns =
        wait_until(
          fn ->
            c = connections(k)
            Enum.all?(names -- [k.name], &Map.has_key?(c, &1)) && c
          end,
          5_000,
          "#{k.label}'s connection lines"
        )

      for {peer, how} <- conns do
        assert how =~ ~r/^(incoming|outgoing), TLSv1\.[23] \S+, peer \/CN=127\.0\.0\.1$/,
               "#{k.label} → #{peer}: #{how}"
      end
    end
    assert Enum.any?([connections(k1)[k2.name], connections(k2)[k1.name]], &(is_binary(&1) and &1 =~ ~r/^outgoing, TLS/))

    # Every node's inbox is in the group Chat, on every node.
    peers = [k1, k2, e1, e2]

    for p <- peers do
      wait_until(fn -> length(List.wrap(rpc(p.name, :pg, :get_members, [Chat]))) >= 4 end, 10_000, "Chat on #{p.label}")
    end

    # chat-node broadcast: its connections (the --via node, then every member's node) over TLS.
    r = cli(["broadcast", "tls to everyone", "--via", Atom.to_string(e2.name) | cli_opts(log_level: "info")])

    assert r.status == 0, r.stderr
    assert [line] = r.stdout
    assert line =~ ~r/^sent to [45] members on [45] nodes$/
    for p <- peers, do: assert_prints(p, "tls to everyone")
    ups = for l <- String.split(r.stderr, "\n"), l =~ "connected to ", do: l
    assert ups != []
    for l <- ups, do: assert(l =~ ~r/\((incoming|outgoing), TLSv1\.[23] /, l)
  end
end
