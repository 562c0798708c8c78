# Cluster membership benchmark: how long a mixed cluster of N nodes takes to become fully
# meshed and globally synced when each node is told about one other only (a chain), and what
# a C++ node's memory does with global's and pg's tables. Run by scripts/bench on its private
# EPMD, as a hidden node (so it is not part of the cluster it measures):
#
#   elixir --hidden --name B@127.0.0.1 --cookie C bench/mesh.exs CHAT_NODE EBIN COOKIE N CPP NAMES MEMBERS
#
# N nodes, CPP of them C++ (chat-node) and the rest BEAM (elixir_peer). Prints one line:
#   mesh nodes=N cpp=CPP mesh_ms=… sync_ms=… rss_alone_kb=… rss_mesh_kb=… rss_tables_kb=…
#        names=NAMES members=MEMBERS
# rss_* are medians over the C++ nodes (0 when there are none): alone and idle; in the
# synced mesh; after NAMES global names and MEMBERS pg members were added on a BEAM node.
[chat_node, ebin, cookie, n, cpp, names, members] = System.argv()
{n, cpp, names, members} = {String.to_integer(n), String.to_integer(cpp), String.to_integer(names), String.to_integer(members)}

defmodule Mesh do
  def now, do: System.monotonic_time(:millisecond)

  def wait(fun, deadline, what) do
    cond do
      fun.() -> :ok
      now() > deadline -> raise "mesh bench: timed out waiting for #{what}"
      true -> Process.sleep(20) && wait(fun, deadline, what)
    end
  end

  def rss_kb(os_pid) do
    case File.read("/proc/#{os_pid}/status") do
      {:ok, s} ->
        [_, kb] = Regex.run(~r/VmRSS:\s+(\d+) kB/, s)
        String.to_integer(kb)

      _ ->
        0
    end
  end

  def median([]), do: 0
  def median(l), do: Enum.at(Enum.sort(l), div(length(l), 2))
end

tag = :erlang.unique_integer([:positive])
nodes =
  for i <- 1..n do
    kind = if i <= cpp, do: :cpp, else: :beam
    name = :"mesh#{tag}_#{i}@127.0.0.1"

    {exe, args} =
      case kind do
        :cpp ->
          {chat_node, ["--name", Atom.to_string(name), "--cookie", cookie, "--log-level", "error"]}

        :beam ->
          {System.find_executable("elixir"),
           ["--name", Atom.to_string(name), "--cookie", cookie, "-pa", ebin, "-e",
            "Application.ensure_all_started(:chat); Process.sleep(:infinity)"]}
      end

    port = Port.open({:spawn_executable, exe}, [:binary, :exit_status, args: args])
    {:os_pid, os_pid} = Port.info(port, :os_pid)
    %{name: name, kind: kind, port: port, os_pid: os_pid}
  end

names_of = Enum.map(nodes, & &1.name)
# Up: each answers an rpc (started its services).
Mesh.wait(fn -> Enum.all?(names_of, &(:rpc.call(&1, :erlang, :node, [], 2_000) == &1)) end, Mesh.now() + 60_000, "the nodes to start")
cpp_pids = for %{kind: :cpp, os_pid: p} <- nodes, do: p
rss_alone = Mesh.median(Enum.map(cpp_pids, &Mesh.rss_kb/1))

# The chain: node i connects to node i+1, all at once, as a user's Node.connect on each.
t0 = Mesh.now()
names_of
|> Enum.chunk_every(2, 1, :discard)
|> Enum.map(fn [a, b] -> Task.async(fn -> :rpc.call(a, Node, :connect, [b], 30_000) end) end)
|> Enum.each(&Task.await(&1, 60_000))

Mesh.wait(
  fn -> Enum.all?(names_of, fn x -> length(List.wrap(:rpc.call(x, :erlang, :nodes, [], 5_000))) == n - 1 end) end,
  Mesh.now() + 120_000,
  "the full mesh"
)

t1 = Mesh.now()
names_of |> Enum.map(fn x -> Task.async(fn -> :ok = :rpc.call(x, :global, :sync, [], 60_000) end) end) |> Enum.each(&Task.await(&1, 120_000))
t2 = Mesh.now()
rss_mesh = Mesh.median(Enum.map(cpp_pids, &Mesh.rss_kb/1))

# Tables: names and pg members registered on a BEAM node (or the first node), seen everywhere.
host = Enum.find(nodes, hd(nodes), &(&1.kind == :beam)).name
if names > 0 do
  for i <- 1..names do
    pid = :rpc.call(host, :erlang, :spawn, [:timer, :sleep, [:infinity]])
    :yes = :rpc.call(host, :global, :register_name, [{:bench, i}, pid])
  end
end

if members > 0 do
  pids = for _ <- 1..members, do: :rpc.call(host, :erlang, :spawn, [:timer, :sleep, [:infinity]])
  :ok = :rpc.call(host, :pg, :join, [:bench_group, pids])
end

Mesh.wait(
  fn ->
    Enum.all?(names_of, fn x ->
      length(List.wrap(:rpc.call(x, :global, :registered_names, [], 5_000))) >= names and
        length(List.wrap(:rpc.call(x, :pg, :get_members, [:bench_group], 5_000))) >= members
    end)
  end,
  Mesh.now() + 120_000,
  "names and members everywhere"
)

rss_tables = Mesh.median(Enum.map(cpp_pids, &Mesh.rss_kb/1))

IO.puts(
  "mesh nodes=#{n} cpp=#{cpp} mesh_ms=#{t1 - t0} sync_ms=#{t2 - t0} rss_alone_kb=#{rss_alone} " <>
    "rss_mesh_kb=#{rss_mesh} rss_tables_kb=#{rss_tables} names=#{names} members=#{members}"
)

for %{port: port, os_pid: p} <- nodes do
  # Closed before the kill: a port whose process has exited is closed already.
  Port.close(port)
  System.cmd("kill", ["-TERM", Integer.to_string(p)])
end
