# The version-6 distribution handshake spoken by hand over :gen_tcp, so that a test can
# misbehave before, during or after it (t13_hostile_ports.exs).
defmodule ChatIT.RawDist do
  import ChatIT, only: [dist_port: 1]

  @loopback {127, 0, 0, 1}
  # DFLAG_* (erts dist.h) as an OTP 25 node offers them, including everything chat-node
  # requires: PUBLISHED, EXTENDED_REFERENCES, DIST_MONITOR, FUN_TAGS, DIST_MONITOR_NAME,
  # NEW_FUN_TAGS, EXTENDED_PIDS_PORTS, EXPORT_PTR_TAG, BIT_BINARIES, NEW_FLOATS, UNICODE_IO,
  # SMALL_ATOM_TAGS, UTF8_ATOMS, MAP_TAG, BIG_CREATION, SEND_SENDER, BIG_SEQTRACE_LABELS,
  # HANDSHAKE_23, UNLINK_ID, MANDATORY_25_DIGEST, SPAWN, V4_NC, ALIAS.
  @flags 0xD_071F_5FBD
  def flags, do: @flags

  def dist_connect(peer) do
    {:ok, sock} =
      :gen_tcp.connect(
        @loopback,
        dist_port(peer.name),
        [:binary, active: false, packet: 2],
        5_000
      )

    sock
  end

  def send_name(sock, name) do
    name = Atom.to_string(name)
    :ok = :gen_tcp.send(sock, <<?N, @flags::64, 1::32, byte_size(name)::16, name::binary>>)
  end

  # Performs a complete handshake as node `name` with `cookie`. Returns {:ok, socket} (now in
  # raw mode, ready for 4-byte frames) or {:error, why}.
  def handshake(peer, name, cookie) do
    sock = dist_connect(peer)
    send_name(sock, name)

    with {:ok, "sok"} <- :gen_tcp.recv(sock, 0, 5_000),
         {:ok, <<?N, _flags::64, challenge::32, _creation::32, nlen::16, _::binary-size(nlen)>>} <-
           :gen_tcp.recv(sock, 0, 5_000) do
      ours = :rand.uniform(0xFFFFFFFF)
      :ok = :gen_tcp.send(sock, <<?r, ours::32, digest(cookie, challenge)::binary>>)

      case :gen_tcp.recv(sock, 0, 5_000) do
        {:ok, <<?a, ack::binary-size(16)>>} ->
          if ack == digest(cookie, ours) do
            :ok = :inet.setopts(sock, packet: :raw)
            {:ok, sock}
          else
            {:error, :bad_ack}
          end

        other ->
          :gen_tcp.close(sock)
          {:error, other}
      end
    else
      other ->
        :gen_tcp.close(sock)
        {:error, other}
    end
  end

  def digest(cookie, challenge), do: :erlang.md5(cookie <> Integer.to_string(challenge))
end
