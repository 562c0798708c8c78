defmodule ChatTest do
  use ExUnit.Case

  # These run on a single, usually non-distributed node; the cross-node
  # behaviour is exercised with real nodes (see README).

  test "sending to the local node runs receive_message and returns nil" do
    assert Chat.send_message(node(), "local hello") == nil
  end

  test "the Chat process counts the binaries it printed" do
    before = GenServer.call(Chat, :count)
    for i <- 1..5, do: send(Chat, "burst #{i}")
    send(Chat, :not_a_binary)
    assert GenServer.call(Chat, :count) == before + 5
  end

  test "broadcast reaches this node's inbox through pg" do
    before = GenServer.call(Chat, :count)
    assert Chat.broadcast("to everyone") == :ok
    assert GenServer.call(Chat, :count) == before + 1
  end

  test "web dyno detection" do
    assert Chat.Application.web_dyno?("web.1", :"kate@10.0.0.1")
    refute Chat.Application.web_dyno?("worker.1", :"web@10.0.0.1")
    assert Chat.Application.web_dyno?(nil, :"web@10.0.0.1")
    refute Chat.Application.web_dyno?(nil, :"moebi@10.0.0.1")
  end

  test "generated secrets have the requested length and alphabet" do
    for n <- [32, 64, 257] do
      secret = Mix.Tasks.Chat.Gen.Secret.generate(n)
      assert String.length(secret) == n
      assert secret =~ ~r/\A[A-Za-z0-9_-]+\z/
    end

    assert_raise FunctionClauseError, fn -> Mix.Tasks.Chat.Gen.Secret.generate(31) end
  end

  test "health listener answers /health and 404s the rest" do
    {:ok, probe} = :gen_tcp.listen(0, [])
    {:ok, port} = :inet.port(probe)
    :ok = :gen_tcp.close(probe)
    start_supervised!({Chat.Health, port: port})

    assert http_get(port, "/health") =~ ~r/\AHTTP\/1\.1 200 .*\r\n\r\nok\z/s
    assert http_get(port, "/health?probe=1") =~ ~r/\AHTTP\/1\.1 200 /
    assert http_get(port, "/") =~ ~r/\AHTTP\/1\.1 404 /
  end

  defp http_get(port, path) do
    {:ok, sock} = :gen_tcp.connect(~c"127.0.0.1", port, [:binary, active: false])
    :ok = :gen_tcp.send(sock, "GET #{path} HTTP/1.1\r\nhost: localhost\r\n\r\n")
    read_all(sock, "")
  end

  defp read_all(sock, acc) do
    case :gen_tcp.recv(sock, 0, 5_000) do
      {:ok, data} -> read_all(sock, acc <> data)
      {:error, :closed} -> acc
    end
  end
end
