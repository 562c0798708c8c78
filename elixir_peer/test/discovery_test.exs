defmodule Chat.DiscoveryTest do
  use ExUnit.Case, async: true

  alias Chat.Discovery

  @moduletag :capture_log

  @procfile """
  # a comment: not a type
  web: build/chat-node --name "web@$HEROKU_PRIVATE_IP"
  moebi: build/chat-node --name "moebi@$HEROKU_PRIVATE_IP"

  alex: cd elixir_peer && mix run --no-halt
  """

  setup do
    dir = Path.join(System.tmp_dir!(), "chat-discovery-#{System.unique_integer([:positive])}")
    File.mkdir_p!(Path.join(dir, "app"))
    on_exit(fn -> File.rm_rf!(dir) end)
    %{dir: dir, app: Path.join(dir, "app")}
  end

  describe "configuration" do
    test "CHAT_DISCOVERY wins and is split on commas", %{dir: dir} do
      env = %{"CHAT_DISCOVERY" => " a.example , ,kate@b.example", "HEROKU_DNS_APP_NAME" => "x"}
      assert Discovery.queries(env, [dir]) == ["a.example", "kate@b.example"]
    end

    test "Heroku: one query per Procfile type, Procfile found in the parent", %{
      dir: dir,
      app: app
    } do
      File.write!(Path.join(dir, "Procfile"), @procfile)
      env = %{"HEROKU_DNS_APP_NAME" => "myapp.app.localspace"}

      assert Discovery.queries(env, [app, dir]) == [
               "web.myapp.app.localspace",
               "moebi.myapp.app.localspace",
               "alex.myapp.app.localspace"
             ]
    end

    test "the first directory holding a Procfile is used", %{dir: dir, app: app} do
      File.write!(Path.join(dir, "Procfile"), @procfile)
      File.write!(Path.join(app, "Procfile"), "worker: run\r\n")
      env = %{"HEROKU_DNS_APP_NAME" => "a.app.localspace"}
      assert Discovery.queries(env, [app, dir]) == ["worker.a.app.localspace"]
    end

    test "without a Procfile, the dyno's own formation", %{app: app} do
      env = %{"HEROKU_DNS_APP_NAME" => "a", "HEROKU_DNS_FORMATION_NAME" => "kate.a"}
      assert Discovery.queries(env, [app]) == ["kate.a"]
      assert Discovery.queries(Map.delete(env, "HEROKU_DNS_FORMATION_NAME"), [app]) == []
    end

    test "nothing configured, nothing to do", %{dir: dir} do
      assert Discovery.queries(%{}, [dir]) == []
      assert Discovery.queries(%{"CHAT_DISCOVERY" => " , "}, [dir]) == []
    end

    test "interval" do
      assert Discovery.interval_ms(%{}) == 5_000
      assert Discovery.interval_ms(%{"CHAT_DISCOVERY_INTERVAL" => "2"}) == 2_000

      ExUnit.CaptureLog.capture_log(fn ->
        assert Discovery.interval_ms(%{"CHAT_DISCOVERY_INTERVAL" => "0"}) == 5_000
        assert Discovery.interval_ms(%{"CHAT_DISCOVERY_INTERVAL" => "soon"}) == 5_000
      end)
    end

    test "queries" do
      assert Discovery.parse_query("kate@kate.a.app.localspace") ==
               {"kate", "kate.a.app.localspace"}

      assert Discovery.parse_query("kate.a.app.localspace") == {nil, "kate.a.app.localspace"}
      assert Discovery.parse_query("@x") == {nil, "@x"}
    end
  end

  describe "rounds" do
    # A fake network: DNS and EPMD answers come from an Agent the test can
    # change between rounds; connects are reported to the test process.
    defp start_fake(dns, epmd, connected) do
      {:ok, net} = Agent.start_link(fn -> %{dns: dns, epmd: epmd, connected: connected} end)
      test = self()

      opts = [
        name: nil,
        interval: 3_600_000,
        monitor_nodes: false,
        self: :"alex@10.0.0.4",
        resolve: fn name -> Agent.get(net, &Map.get(&1.dns, name, [])) end,
        names: fn ip -> Agent.get(net, &Map.get(&1.epmd, ip, [])) end,
        connect: fn node ->
          send(test, {:connect, node})
          true
        end,
        connected: fn -> Agent.get(net, & &1.connected) end
      ]

      {net, opts}
    end

    defp connects do
      receive do
        {:connect, node} -> [node | connects()]
      after
        0 -> []
      end
    end

    test "lists EPMD names per address, connects to what is not connected" do
      dns = %{
        "web.a" => [{10, 0, 0, 1}],
        "kate.a" => [{10, 0, 0, 2}, {10, 0, 0, 3}],
        "alex.a" => [{10, 0, 0, 4}]
      }

      epmd = %{
        {10, 0, 0, 1} => ["web"],
        {10, 0, 0, 2} => ["kate"],
        {10, 0, 0, 3} => ["kate", "run1"],
        {10, 0, 0, 4} => ["alex"]
      }

      {net, opts} = start_fake(dns, epmd, [:"web@10.0.0.1"])
      queries = ["web.a", "kate.a", "alex.a", "missing.a"]
      pid = start_supervised!({Discovery, [queries: queries] ++ opts})

      listed = Discovery.poll(pid)

      assert Enum.sort(listed) ==
               [:"kate@10.0.0.2", :"kate@10.0.0.3", :"run1@10.0.0.3", :"web@10.0.0.1"]

      # web is connected already, and this node itself is never connected to.
      assert Enum.sort(Enum.uniq(connects())) == [
               :"kate@10.0.0.2",
               :"kate@10.0.0.3",
               :"run1@10.0.0.3"
             ]

      # kate.2 leaves DNS: it is not listed, nor connected to, any more.
      Agent.update(net, fn s ->
        %{
          s
          | dns: Map.put(s.dns, "kate.a", [{10, 0, 0, 2}]),
            connected: [:"web@10.0.0.1", :"kate@10.0.0.2"]
        }
      end)

      assert Enum.sort(Discovery.poll(pid)) == [:"kate@10.0.0.2", :"web@10.0.0.1"]
      assert connects() == []
      assert Enum.sort(Discovery.listed(pid)) == [:"kate@10.0.0.2", :"web@10.0.0.1"]
    end

    test "an EPMD that never answers holds up no other address" do
      dns = %{"kate.a" => [{10, 0, 0, 2}, {10, 0, 0, 3}]}
      {_net, opts} = start_fake(dns, %{{10, 0, 0, 3} => ["kate"]}, [])
      test = self()

      silent = fn
        {10, 0, 0, 2} ->
          send(test, :silent_asked)
          Process.sleep(:infinity)

        ip ->
          Keyword.fetch!(opts, :names).(ip)
      end

      pid = start_supervised!({Discovery, [queries: ["kate.a"], names: silent] ++ opts})
      assert_receive :silent_asked
      assert_receive {:connect, :"kate@10.0.0.3"}, 2_000
      assert Discovery.listed(pid) == [:"kate@10.0.0.3"]
    end

    test "NAME@DNSNAME queries connect without asking EPMD" do
      {_net, opts} = start_fake(%{"moebi.a" => [{10, 0, 0, 9}]}, %{}, [])
      pid = start_supervised!({Discovery, [queries: ["moebi@moebi.a"]] ++ opts})
      assert Discovery.poll(pid) == [:"moebi@10.0.0.9"]
      assert :"moebi@10.0.0.9" in connects()
    end
  end
end
