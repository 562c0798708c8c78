// The distribution network of one node: the listening socket, the EPMD registration and one
// connection per peer. Implements node::Transport for the node layer.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chat/node/node.hpp"
#include "chat/node/ports.hpp"
#include "chat/dist/handshake.hpp"
#include "chat/net/counters.hpp"
#include "chat/net/runtime.hpp"
#include "chat/tls/engine.hpp"

namespace chat::net {

class Connection;
class EpmdRegistration;

// Where what peers send ends up faster than it can leave (stdout, for the Chat inbox). A
// connection whose read fed it (fed() moved) while it is shut stops reading from its peer
// (TCP backpressure on that peer alone: ticks, HTTP and peers that do not print go on) and
// reads again when the gate calls back. A paused peer is never dropped for silence.
class InputGate {
 public:
  virtual ~InputGate() = default;
  [[nodiscard]] virtual bool shut() const = 0;
  // A count that moves whenever something goes through the gate (lines printed).
  [[nodiscard]] virtual uint64_t fed() const = 0;
  // Calls `resume` once, on the loop thread, when the gate is open (at once if it is).
  virtual void when_open(std::function<void()> resume) = 0;
};

struct PeerStatus {
  std::string name;
  uint64_t flags = 0;        // as the peer offered them
  uint64_t up_since_ms = 0;  // loop time
  bool incoming = false;
};

struct NetworkConfig {
  std::string name;  // alive@host
  std::string cookie;
  uint16_t epmd_port = 4369;
  uint16_t listen_port = 0;        // 0: any free port
  uint32_t net_ticktime_s = 60;
  uint32_t setup_timeout_ms = 7000;  // net_setuptime's default
  size_t max_frame = 128U << 20U;  // enough for a 64 MB binary and its control message
  size_t max_queue = 256U << 20U;  // bytes queued for one peer before it is disconnected
  size_t busy_limit = 1U << 20U;   // queued for one peer, its senders wait (a BEAM's +zdbbl)
  // Outgoing connections being set up at once (resolving, asking EPMD, connecting, in the
  // handshake), and host name lookups among them (they share libuv's four-thread pool with
  // discovery). A peer may name any node it likes: past these, an attempt fails at once.
  size_t max_connect_attempts = 64;
  size_t max_resolving = 8;
  uint64_t flags = 0;
  bool start_epmd = true;  // run `epmd -daemon` when none answers at start, as erl does
  // Set: the distribution runs over TLS (-proto_dist inet_tls), every connection both ways.
  tls::DistContexts tls;
};

class Network final : public node::Transport {
 public:
  Network(Runtime& runtime, NetworkConfig config);
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  ~Network() override;

  void attach(node::Node& node) { node_ = &node; }

  // Listens, then registers with EPMD; `ready` gets the creation EPMD assigned.
  // `fatal` is called if either fails, or if the registration is lost.
  void start(std::function<void(uint32_t creation)> ready, std::function<void(const std::string&)> fatal);
  // Closes every connection and the EPMD registration (which unregisters the name).
  void stop();

  // Called when a connection to `peer` could not be set up, with the cause.
  std::function<void(const std::string& peer, const std::string& why)> on_connect_failed;

  // node::Transport
  void send(const std::string& peer, const term::Term& control, const term::Term* payload) override;
  void send(const std::string& peer, const dist::SendParts& send, const term::Term& payload) override;
  [[nodiscard]] uint64_t flags(const std::string& peer) const override;
  [[nodiscard]] std::vector<std::string> peers() const override;
  [[nodiscard]] std::vector<PeerStatus> peer_status() const;
  // Connects to `peer` unless a connection exists or is being set up (net_kernel:connect_node).
  void connect(const std::string& peer) override;
  void disconnect(const std::string& peer) override;
  [[nodiscard]] bool busy(const std::string& peer) const override;
  void when_not_busy(const std::string& peer, std::weak_ptr<std::function<void()>> resume) override;
  void call_begun(bool by_peer) override;
  void demonitor_due(const std::string& peer) override;
  void settle_after_writes(std::weak_ptr<Connection*> c) { to_settle_.push_back(std::move(c)); }
  // A connection's queue went down (or it is gone): who waits on `peer` goes on if it may.
  void maybe_not_busy(const std::string& peer);
  [[nodiscard]] bool connecting_or_up(const std::string& peer) const { return by_peer_.contains(peer); }

  // Backpressure: connections consult `gate` after each read they hand to the node.
  void set_gate(InputGate* gate) { gate_ = gate; }
  [[nodiscard]] InputGate* gate() const { return gate_; }
  // Stops reading from `peer` until the gate opens (for input the node handles later than
  // the read that brought it). Nothing happens while the gate is open.
  void hold(const std::string& peer);
  [[nodiscard]] size_t paused_peers() const;

  // Called by connections.
  Runtime& runtime() { return runtime_; }
  const NetworkConfig& config() const { return config_; }
  [[nodiscard]] bool uses_tls() const { return config_.tls.server != nullptr; }
  node::Node& node() { return *node_; }
  dist::Admission admit(Connection& c, const std::string& peer);
  void connection_up(Connection& c);
  void connection_failed(Connection& c, const std::string& why);
  void connection_closed(Connection& c, const std::string& why);
  // Drops a connection that never carried anything the node knows about.
  void forget(Connection& c);
  // Bytes queued for connections still being set up, all together: added, removed.
  void connecting_bytes(size_t added, size_t removed) { connecting_bytes_ = connecting_bytes_ + added - removed; }
  [[nodiscard]] size_t connecting_bytes() const { return connecting_bytes_; }
  // After what frees much memory soon (a large message, a burst of frames, a peer that goes
  // with its monitors and links), free heap memory goes back to the system: checked once a
  // second for 30 s, and at every tick, but only once the burst has paused for a second.
  // While it lasts, its freed buffers are reused as they are: pages given back in the middle
  // of a burst are faulted in again by its next message, at a few µs per page, on the loop.
  void trim_soon();
  // One frame read: every kFramesPerTrimCheck frames count as a burst (trim_soon).
  void frame_seen() {
    if (++frames_since_trim_check_ >= kFramesPerTrimCheck) {
      frames_since_trim_check_ = 0;
      trim_soon();
    }
  }
  uint16_t listen_port() const { return listen_port_; }
  const sockaddr_storage& epmd_address() const { return epmd_addr_; }

  // For /metrics: what happened so far, and what is held now.
  NetCounters& counters() { return counters_; }
  [[nodiscard]] const NetCounters& counters() const { return counters_; }
  [[nodiscard]] size_t connections() const { return all_.size(); }  // up or being set up
  [[nodiscard]] size_t queued_bytes() const;                          // written to no socket yet

 private:
  static void on_connection(uv_stream_t* server, int status);
  void register_with_epmd();
  void registration_failed(const std::string& why);
  void start_epmd_daemon();
  void remove(Connection& c);
  Connection* connection_to(const std::string& peer);
  // Why a new outgoing connection may not start now, or "".
  std::string attempt_refused(const std::string& peer) const;
  void refuse_later(const std::string& peer, const std::string& why);
  void report_refused();
  void tick();

  Runtime& runtime_;
  NetworkConfig config_;
  node::Node* node_ = nullptr;
  // Before the connections: they report to it as they go.
  size_t connecting_bytes_ = 0;
  uv_tcp_t* listener_ = nullptr;
  uint16_t listen_port_ = 0;
  sockaddr_storage epmd_addr_{};
  std::unique_ptr<EpmdRegistration> registration_;
  std::function<void(uint32_t)> ready_;
  std::function<void(const std::string&)> fatal_;
  bool registered_once_ = false;
  int epmd_attempts_ = 0;
  static constexpr int kStartupRegistrationAttempts = 50;  // × 100 ms
  std::unordered_map<std::string, Connection*> by_peer_;
  // Incoming connections from peers we are still up with (net_kernel's up_pending): they
  // replace the old connection once their handshake is done.
  std::unordered_map<std::string, Connection*> replacing_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> all_;
  std::vector<std::unique_ptr<Connection>> closed_;  // freed before the next poll
  // Connections that decide their socket's low-water mark once this turn's writes are out
  // (Connection::settle_low_water), and the list being walked.
  std::vector<std::weak_ptr<Connection*>> to_settle_;
  std::vector<std::weak_ptr<Connection*>> settling_;
  InputGate* gate_ = nullptr;
  // Senders waiting for a busy peer; expired entries are dropped as the list grows.
  std::unordered_map<std::string, std::vector<std::weak_ptr<std::function<void()>>>> busy_waiters_;
  node::WarnBudget own_warnings_;  // until a node is attached
  node::WarnBudget& warnings() { return node_ != nullptr ? node_->peer_warnings() : own_warnings_; }
  // Attempts refused at once, reported from the loop (never inside the send that asked).
  std::deque<std::pair<std::string, std::string>> refused_;
  std::unordered_set<std::string> refused_names_;  // the peers in refused_
  uint64_t refused_timer_ = 0;
  bool refused_going_on_ = false;  // report_refused() waits for the next turn
  // What next_turn() work holds instead of `this` (the node may stop before that turn).
  std::shared_ptr<Network*> token_ = std::make_shared<Network*>(this);
  uint64_t refused_count_ = 0;
  uint64_t ticker_ = 0;
  uint64_t trim_timer_ = 0;
  static constexpr uint32_t kFramesPerTrimCheck = 4096;
  uint32_t frames_since_trim_check_ = 0;
  uint64_t trim_until_ms_ = 0;
  uint64_t last_burst_ms_ = 0;
  void trim();
  // In libuv's thread pool, unless a burst is on or a departed peer's tables are being freed
  // (the trim would hold glibc's lock against every free() of them).
  void trim_if_quiet();
  bool stopping_ = false;
  NetCounters counters_;
};

}  // namespace chat::net
