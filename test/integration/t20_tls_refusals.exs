# it: tls
# What TLS distribution keeps out, and how it says so. In a cluster whose nodes trust one CA
# (run.sh's), a peer with a certificate from another CA, an expired one, or none, and a peer
# that speaks plain TCP to a TLS node (or TLS to a plain one) fails that one connection, with a
# log line that says why, while the node keeps serving everyone else. A bad optfile or a
# missing certificate file stops a node at start with an error naming the file, and hostile
# bytes and stalled TLS handshakes on the port are dropped like a stalled distribution
# handshake (7 s), never holding anything up.
defmodule ChatIT.T20TlsRefusalsTest do
  use ExUnit.Case, async: false
  import ChatIT
  alias ChatIT.OsProc

  @loopback {127, 0, 0, 1}

  setup_all do
    other_ca = tls_other_ca("other-ca")
    # tls-cert writes the optfile and its files; only the files of these are used below.
    tls_cert("rogue", [], ca: other_ca)
    tls_cert("expired", ["--backdate-days", "3", "--days", "1"])
    cluster_ca = Path.join([tls_dir(), "node", "ca.pem"])

    %{
      kate: start_cpp(unique("kate")),
      # A certificate from another CA, presented to nodes it trusts (the cluster's CA).
      rogue: optfile("rogue.conf", "rogue", cluster_ca),
      # A node of another cluster: it trusts only the other CA.
      stranger: optfile("stranger.conf", "rogue", Path.join(other_ca, "ca.pem")),
      expired: optfile("expired.conf", "expired", cluster_ca),
      # No certificate, while still verifying the server's.
      anonymous: optfile("anonymous.conf", nil, cluster_ca)
    }
  end

  # An optfile with the certificate and key in tls_dir()/`cert_dir` (none if nil) and the CAs
  # in `cacertfile`.
  defp optfile(name, cert_dir, cacertfile) do
    path = Path.join(tls_dir(), name)

    identity =
      if cert_dir,
        do:
          ~s({certfile, "#{tls_dir()}/#{cert_dir}/node.pem"}, {keyfile, "#{tls_dir()}/#{cert_dir}/node.key"}, ),
        else: ""

    File.write!(path, """
    [{server, [{certfile, "#{tls_dir()}/node/node.pem"}, {keyfile, "#{tls_dir()}/node/node.key"},
               {cacertfile, "#{cacertfile}"}, {verify, verify_peer}, {fail_if_no_peer_cert, true}]},
     {client, [#{identity}{cacertfile, "#{cacertfile}"}, {verify, verify_peer}]}].
    """)

    path
  end

  # Node.ping(target) from a separate Elixir node started with `tls_args` (the erl flags);
  # returns what it printed.
  defp beam_ping(target, erl_flags) do
    code = "IO.puts(\"PING \" <> inspect(Node.ping(#{inspect(target)})))"
    exe = System.find_executable(System.get_env("ELIXIR", "elixir"))

    args =
      erl_flags ++
        ["--name", Atom.to_string(unique("intruder")), "--cookie", cookie(), "-e", code]

    {:ok, proc} = OsProc.start("intruder", exe, args)
    assert {:ok, 0} = OsProc.await_exit(proc, 60_000)
    line = Enum.find(OsProc.lines(proc), &String.starts_with?(&1, "PING "))
    OsProc.stop(proc)
    line
  end

  defp tls_flags(optfile), do: ["--erl", "-proto_dist inet_tls -ssl_dist_optfile #{optfile}"]

  # Waits for `kate` to log a refused connection whose line contains every one of `words`.
  defp assert_refused(kate, words) do
    wait_until(
      fn ->
        log(kate)
        |> String.split("\n")
        |> Enum.any?(fn l -> l =~ "refused" and Enum.all?(words, &String.contains?(l, &1)) end)
      end,
      10_000,
      "a refusal mentioning #{inspect(words)} in #{kate.label}'s log"
    )
  end

  defp still_serving(kate) do
    msg = "still serving #{System.unique_integer([:positive])}"
    assert within(10_000, "Chat.send_message", fn -> Chat.send_message(kate.name, msg) end) == nil
    assert_prints(kate, msg)
  end

  describe "a certificate from another CA" do
    test "a C++ client is refused by the C++ node", %{kate: kate, rogue: rogue} do
      r = cli_ping(kate.name, tls: rogue)
      assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
      # In TLS 1.3 the server judges the client's certificate after the client has finished
      # its handshake: the client sees the server's alert, or only the close that follows it
      # when the close wins the race. The server's log says why in both cases.
      assert r.stderr =~ ~r/TLS|closed during the handshake/
      assert_refused(kate, ["TLS", "certificate verify failed"])
      still_serving(kate)
    end

    test "a C++ client of another cluster refuses a BEAM's certificate", %{stranger: stranger} do
      r = cli_ping(node(), tls: stranger)
      assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
      assert r.stderr =~ "certificate verify failed"
    end

    test "a BEAM is refused by the C++ node", %{kate: kate, rogue: rogue} do
      assert beam_ping(kate.name, tls_flags(rogue)) == "PING :pang"
      assert_refused(kate, ["TLS", "certificate verify failed"])
      still_serving(kate)
    end
  end

  describe "an expired certificate" do
    test "on a C++ client: refused by the C++ node", %{kate: kate, expired: expired} do
      r = cli_ping(kate.name, tls: expired)
      assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
      assert_refused(kate, ["certificate has expired"])
    end

    test "on a C++ server: this VM cannot connect, and the node logs the BEAM's alert" do
      # tls-cert's own optfile: the expired certificate on both sides.
      old = start_cpp(unique("old"), tls: Path.join([tls_dir(), "expired", "ssl_dist.conf"]))
      assert Node.ping(old.name) == :pang
      assert_refused(old, ["TLS", "expired"])
    end

    test "on a BEAM: refused by the C++ node", %{kate: kate, expired: expired} do
      assert beam_ping(kate.name, tls_flags(expired)) == "PING :pang"
      assert_refused(kate, ["certificate has expired"])
    end
  end

  describe "no certificate" do
    test "a C++ client without one is refused", %{kate: kate, anonymous: anonymous} do
      r = cli_ping(kate.name, tls: anonymous)
      assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
      assert_refused(kate, ["TLS", "did not return a certificate"])
    end

    test "a BEAM without one is refused", %{kate: kate, anonymous: anonymous} do
      assert beam_ping(kate.name, tls_flags(anonymous)) == "PING :pang"
      assert_refused(kate, ["TLS", "did not return a certificate"])
      still_serving(kate)
    end
  end

  describe "plain TCP and TLS do not mix" do
    test "plain TCP to a TLS node: a C++ client and a BEAM", %{kate: kate} do
      r = cli_ping(kate.name, tls: false)
      assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
      assert_refused(kate, ["plain TCP distribution"])
      assert beam_ping(kate.name, []) == "PING :pang"
      still_serving(kate)
    end

    test "TLS to a plain node: this VM and a C++ client" do
      plain = start_cpp(unique("plain"), tls: false)
      assert Node.ping(plain.name) == :pang
      assert_refused(plain, ["the peer speaks TLS"])
      r = cli_ping(plain.name)
      assert {r.status, r.stdout} == {1, ["pang"]}, inspect(r)
      assert r.stderr =~ "TLS handshake"
    end
  end

  describe "start-up errors name the file" do
    defp start_fails(optfile) do
      r =
        cli([
          "--name",
          Atom.to_string(unique("bad")),
          "--cookie",
          cookie(),
          "--ssl-dist-optfile",
          optfile
        ])

      assert r.status in [1, 64], inspect(r)
      refute Enum.any?(r.stdout, &String.starts_with?(&1, "Node name:"))
      r.stderr
    end

    test "a missing optfile" do
      missing = Path.join(tls_dir(), "no-such.conf")
      assert start_fails(missing) =~ "ssl_dist_optfile #{missing}: No such file or directory"
    end

    test "an optfile that is not a term, or names an option chat-node does not know" do
      bad = Path.join(tls_dir(), "bad.conf")
      File.write!(bad, "[{server, [{certfile, \"x\"}]\n")
      assert start_fails(bad) =~ "ssl_dist_optfile #{bad}: line 2: expected"
      File.write!(bad, "[{server, [{psk_identity, \"x\"}]}, {client, []}].\n")

      assert start_fails(bad) =~
               "ssl_dist_optfile #{bad}: {server, [...]}: psk_identity: not supported"
    end

    test "a certificate file that does not exist" do
      bad = Path.join(tls_dir(), "missing-cert.conf")
      gone = Path.join(tls_dir(), "gone.pem")

      File.write!(
        bad,
        String.replace(File.read!(tls_optfile()), "#{tls_dir()}/node/node.pem", gone)
      )

      assert start_fails(bad) =~ "certfile #{gone}: No such file or directory"
    end
  end

  describe "hostile bytes and stalled handshakes on the TLS port" do
    defp connect(port) do
      {:ok, sock} = :gen_tcp.connect(@loopback, port, [:binary, active: false], 5_000)
      sock
    end

    test "silence, garbage, a record that never ends and a TLS handshake with nothing after it",
         %{kate: kate} do
      port = dist_port(kate.name)
      silent = for _ <- 1..4, do: connect(port)

      garbage =
        for i <- 1..6 do
          sock = connect(port)
          _ = :gen_tcp.send(sock, :crypto.strong_rand_bytes(100 * i))
          sock
        end

      # A handshake record header announcing 16 KB, then a few bytes of it.
      stalled = connect(port)
      :ok = :gen_tcp.send(stalled, <<0x16, 3, 1, 0x40, 0x00, 1, 0, 0x3F, 0xFC>>)

      # A complete TLS handshake with this VM's own certificate, then no distribution
      # handshake at all. (A VM on inet_tls runs only the distribution's part of ssl: a
      # socket of its own needs the application.)
      {:ok, _} = Application.ensure_all_started(:ssl)

      {:ok, tls} =
        :ssl.connect(
          ~c"127.0.0.1",
          port,
          [
            :binary,
            active: false,
            certfile: String.to_charlist("#{tls_dir()}/node/node.pem"),
            keyfile: String.to_charlist("#{tls_dir()}/node/node.key"),
            cacertfile: String.to_charlist("#{tls_dir()}/node/ca.pem"),
            verify: :verify_peer,
            server_name_indication: ~c"127.0.0.1"
          ],
          10_000
        )

      # Meanwhile real nodes get through, C++ and BEAM alike.
      still_serving(kate)
      r = cli_send(kate.name, "amid hostile TLS peers")
      assert r.status == 0, inspect(r)

      # The stalled ones are dropped after the setup time, the garbage at once.
      assert {:error, :closed} = :gen_tcp.recv(stalled, 0, 20_000)
      assert {:error, :closed} = :ssl.recv(tls, 0, 20_000)
      for s <- silent ++ garbage, do: assert({:error, _} = recv_past_alerts(s))
      assert log(kate) =~ "handshake timed out"
      still_serving(kate)
    end
  end

  # Random bytes that happen to start like a TLS record get a fatal alert before the close
  # (a record_overflow, say), as from a BEAM: read past alerts to the close.
  defp recv_past_alerts(sock) do
    case :gen_tcp.recv(sock, 0, 20_000) do
      {:ok, <<21, _::binary>>} -> recv_past_alerts(sock)
      other -> other
    end
  end
end
