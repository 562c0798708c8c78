// Event counters of the distribution network: connections set up and how they failed, bytes
// read and queued. The net layer only adds to them, on the loop thread (no atomics, no locks);
// the web layer reads them for /metrics (app/metrics.cpp). Counting never changes what the
// network does.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace chat::net {

// How a handshake that had started ended (it starts when the TCP connection is up).
enum class HandshakeResult : uint8_t {
  kOk,
  kWrongCookie,  // the peer's digest did not match our cookie
  kRejected,     // the peer closed after our challenge reply: it found our digest wrong
  kProtocol,     // otherwise refused: a status other than ok, a bad name, flags or message
  kClosed,       // the connection closed before the handshake completed
  kTimeout,      // no complete handshake within the setup time (net_setuptime)
};
inline constexpr size_t kHandshakeResults = 6;

// Why an outgoing connection failed before its handshake started.
enum class ConnectFailure : uint8_t {
  kResolve,     // the host name did not resolve
  kEpmd,        // the host's EPMD did not answer, or answered nonsense
  kNoSuchNode,  // the host's EPMD does not know the node
  kConnect,     // the distribution port refused or dropped the connection
  kTimeout,     // DNS, EPMD and connect took longer than the setup time
};
inline constexpr size_t kConnectFailures = 5;

struct NetCounters {
  uint64_t accepted = 0;   // connections the listener accepted
  uint64_t initiated = 0;  // connections this node started (connect, or a send to a new peer)
  std::array<uint64_t, kHandshakeResults> handshakes{};
  std::array<uint64_t, kConnectFailures> connect_failures{};
  uint64_t disconnects = 0;  // connections that were up and closed (either side, any cause)
  uint64_t bytes_in = 0;     // read from peers: handshakes and frames, ticks included
  uint64_t bytes_out = 0;    // queued for peers: handshakes and frames, ticks included
  // Answers after which a socket held the peer's due demonitor (Connection::demonitor_due),
  // holds that its timer ended rather than the peer's next frame, and holds that also covered
  // the monitor of the peer's next call.
  uint64_t demonitor_holds = 0;
  uint64_t demonitor_holds_expired = 0;
  uint64_t demonitor_holds_deep = 0;

  void handshake(HandshakeResult r) { ++handshakes[static_cast<size_t>(r)]; }
  void connect_failed(ConnectFailure f) { ++connect_failures[static_cast<size_t>(f)]; }
};

// Label values for /metrics.
inline const char* label(HandshakeResult r) {
  constexpr std::array<const char*, kHandshakeResults> kNames{"ok",       "wrong_cookie", "rejected",
                                                              "protocol", "closed",       "timeout"};
  return kNames[static_cast<size_t>(r)];
}
inline const char* label(ConnectFailure f) {
  constexpr std::array<const char*, kConnectFailures> kNames{"resolve", "epmd", "no_such_node", "connect", "timeout"};
  return kNames[static_cast<size_t>(f)];
}

}  // namespace chat::net
