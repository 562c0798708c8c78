# Runs in a one-off dyno of the space as a hidden node (it shows up in no
# node's Node.list/0) and asks every node of the space, over :rpc, which
# nodes it is connected to.
#
#   CHECK_NODES      the space's nodes, space-separated
#   CHECK_MODE       mesh:   wait until every node lists every other one
#                    absent: for CHECK_WINDOW_MS, no node may list CHECK_ABSENT
#   CHECK_TIMEOUT_MS mesh: how long to wait (default 20000)
#
# Exit status 0 when the condition holds; 1 (with the lists seen) otherwise.
nodes = System.fetch_env!("CHECK_NODES") |> String.split() |> Enum.map(&String.to_atom/1)
mode = System.get_env("CHECK_MODE", "mesh")

lists = fn ->
  Map.new(nodes, fn n ->
    case :rpc.call(n, Node, :list, [], 3_000) do
      l when is_list(l) -> {n, Enum.sort(l)}
      other -> {n, {:unreachable, other}}
    end
  end)
end

show = fn seen ->
  for {n, l} <- Enum.sort(seen), do: IO.puts("  #{n} -> #{inspect(l)}")
end

now = fn -> System.monotonic_time(:millisecond) end

case mode do
  "mesh" ->
    deadline = now.() + String.to_integer(System.get_env("CHECK_TIMEOUT_MS", "20000"))

    missing = fn seen ->
      for {n, l} <- seen, m <- nodes, m != n, not (is_list(l) and m in l), do: {n, m}
    end

    wait = fn wait ->
      seen = lists.()

      case missing.(seen) do
        [] ->
          IO.puts("mesh: every node lists the #{length(nodes) - 1} others")
          show.(seen)

        gaps ->
          if now.() >= deadline do
            IO.puts("mesh: NOT complete; missing (node, peer): #{inspect(gaps)}")
            show.(seen)
            System.halt(1)
          else
            Process.sleep(100)
            wait.(wait)
          end
      end
    end

    wait.(wait)

  "absent" ->
    absent = String.to_atom(System.fetch_env!("CHECK_ABSENT"))
    window = String.to_integer(System.fetch_env!("CHECK_WINDOW_MS"))
    deadline = now.() + window

    check = fn check ->
      seen = lists.()
      bad = for {n, l} <- seen, not is_list(l) or absent in l, do: n

      cond do
        bad != [] ->
          IO.puts("absent: #{absent} is listed by, or could not ask: #{inspect(bad)}")
          show.(seen)
          System.halt(1)

        now.() >= deadline ->
          IO.puts("absent: no node listed #{absent} during #{window} ms")
          show.(seen)

        true ->
          Process.sleep(200)
          check.(check)
      end
    end

    check.(check)
end
