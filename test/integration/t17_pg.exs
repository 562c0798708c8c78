# it: hidden
# :pg with C++ nodes: joins and leaves seen both ways, members of a node that goes dropped,
# the group chat (Chat.broadcast/1, chat-node broadcast) reaching every node once, and hidden
# nodes staying out of the cluster. amanda (this VM) is hidden.
defmodule T17Pg do
  use ExUnit.Case, async: false
  import ChatIT

  defp members(node, group), do: Enum.sort(List.wrap(rpc(node, :pg, :get_members, [group])))
  defp chat_pid(node), do: rpc(node, :erlang, :whereis, [Chat])

  test "joins and leaves both ways; a killed node's members leave" do
    k = start_cpp(unique("kate"))
    e = start_elixir(unique("alex"))
    connect(e.name, k.name)
    kchat = chat_pid(k.name)
    echat = chat_pid(e.name)
    # Every chat node's inbox is in the group Chat, whichever side looks.
    both = Enum.sort([kchat, echat])
    wait_until(fn -> members(e.name, Chat) == both end, 5_000, "Chat on alex")
    wait_until(fn -> members(k.name, Chat) == both end, 5_000, "Chat on kate")
    assert rpc(k.name, :pg, :get_local_members, [Chat]) == [kchat]
    assert Chat in rpc(k.name, :pg, :which_groups, [])

    # A BEAM process joins and leaves a group of its own: kate sees both.
    p = rpc(e.name, :erlang, :spawn, [:timer, :sleep, [:infinity]])
    assert rpc(e.name, :pg, :join, [:room, p]) == :ok
    wait_until(fn -> members(k.name, :room) == [p] end, 5_000, "join seen on kate")
    assert rpc(e.name, :pg, :leave, [:room, p]) == :ok
    wait_until(fn -> members(k.name, :room) == [] end, 5_000, "leave seen on kate")
    assert rpc(e.name, :pg, :join, [:room, p]) == :ok
    wait_until(fn -> members(k.name, :room) == [p] end, 5_000, "join again")
    rpc(e.name, Process, :exit, [p, :kill])
    wait_until(fn -> members(k.name, :room) == [] end, 5_000, "a dead member leaves")

    # kate's inbox dies: it leaves Chat everywhere, and its successor joins.
    rpc(e.name, Process, :exit, [kchat, :kill])
    wait_until(fn -> (c = chat_pid(k.name)) != kchat and is_pid(c) end, 5_000, "a new Chat on kate")
    kchat2 = chat_pid(k.name)
    wait_until(fn -> members(e.name, Chat) == Enum.sort([kchat2, echat]) end, 5_000, "the new inbox in Chat")

    # kate killed outright: alex's view of Chat keeps only its own inbox.
    signal(k, "KILL")
    wait_until(fn -> members(e.name, Chat) == [echat] end, 10_000, "kate's members gone")
  end

  test "a late C++ node gets the whole group (sync), and a BEAM joining later sees it" do
    e1 = start_elixir(unique("alex"))
    e2 = start_elixir(unique("alex"))
    connect(e1.name, e2.name)
    k = start_cpp(unique("kate"))
    connect(k.name, e1.name)
    wait_mesh([e1.name, e2.name, k.name])
    all = Enum.sort(Enum.map([e1, e2, k], &chat_pid(&1.name)))
    for n <- [e1.name, e2.name, k.name] do
      wait_until(fn -> members(n, Chat) == all end, 5_000, "Chat complete on #{n}")
    end
  end

  test "Chat.broadcast/1 from a BEAM node and chat-node broadcast reach every node once" do
    k1 = start_cpp(unique("kate"))
    k2 = start_cpp(unique("kate"))
    e1 = start_elixir(unique("alex"))
    e2 = start_elixir(unique("alex"))
    connect(e1.name, k1.name)
    connect(k1.name, e2.name)
    connect(e2.name, k2.name)
    peers = [k1, k2, e1, e2]
    wait_mesh(Enum.map(peers, & &1.name))
    for p <- peers do
      wait_until(fn -> length(members(p.name, Chat)) == 4 end, 5_000, "Chat complete on #{p.name}")
    end

    assert rpc(e1.name, Chat, :broadcast, ["hello everyone"]) == :ok
    for p <- peers, do: assert_prints(p, "hello everyone")

    # ...from a C++ node through rpc too...
    assert rpc(k2.name, Chat, :broadcast, ["from kate"]) == :ok
    for p <- peers, do: assert_prints(p, "from kate")

    # ...and from the command line, through any node of the cluster.
    r = cli(["broadcast", "from the command line", "--via", Atom.to_string(e2.name) | cli_opts()])
    assert r.status == 0, r.stderr
    assert r.stdout == ["sent to 4 members on 4 nodes"]
    for p <- peers, do: assert_prints(p, "from the command line")
    for p <- peers, do: barrier(p)
    for p <- peers, line <- ["hello everyone", "from kate", "from the command line"] do
      assert count(p, line) == 1, "#{p.label} printed #{inspect(line)} #{count(p, line)} times"
    end
  end

  test "hidden nodes stay out of Node.list() and of the mesh" do
    e = start_elixir(unique("alex"))
    k = start_cpp(unique("kate"))
    h = start_cpp(unique("ghost"), args: ["--hidden"])
    connect(e.name, k.name)
    connect(h.name, e.name)
    assert h.name in rpc(e.name, Node, :list, [:hidden])
    refute h.name in rpc(e.name, Node, :list, [])
    assert rpc(h.name, Node, :list, []) == []
    assert e.name in rpc(h.name, Node, :list, [:hidden])
    assert global_sync(e.name) == :ok
    # global never meshes a hidden node in, and its pg is not discovered.
    refute h.name in List.wrap(nodes_of(k.name)) ++ List.wrap(rpc(k.name, Node, :list, [:hidden]))
    refute chat_pid(h.name) in members(e.name, Chat)
  end
end
