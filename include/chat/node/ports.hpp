// What the node layer needs from the outside world, declared here and implemented by the net
// layer (and by fakes in unit tests). The node never sees sockets or the event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/dist/framing.hpp"
#include "chat/term/term.hpp"

namespace chat::node {

class Transport {
 public:
  virtual ~Transport() = default;
  // Queues one distribution message for `peer`, connecting to it first if needed (as a BEAM
  // does on the first send). A failed connection is reported back through Node::peer_down.
  virtual void send(const std::string& peer, const term::Term& control, const term::Term* payload) = 0;
  // The same for a plain send, whose control is written from its parts.
  virtual void send(const std::string& peer, const dist::SendParts& send, const term::Term& payload) = 0;
  // Flags negotiated with a connected peer; 0 when there is no connection (yet).
  [[nodiscard]] virtual uint64_t flags(const std::string& peer) const = 0;
  // Names of the nodes with an established connection.
  [[nodiscard]] virtual std::vector<std::string> peers() const = 0;
  // Sets up a connection unless one exists or is being set up (net_kernel:connect_node/1).
  virtual void connect(const std::string& peer) = 0;
  // Closes the connection (erlang:disconnect_node/1); the node hears of it through peer_down.
  virtual void disconnect(const std::string& peer) = 0;
  // Whether more than the busy limit is queued for `peer` (a BEAM suspends a process sending
  // on such a connection: dist_buf_busy_limit).
  [[nodiscard]] virtual bool busy(const std::string& peer) const = 0;
  // Calls `resume`, if it still lives then, once `peer` is no longer busy or its connection is
  // gone; from a later loop turn, never from inside this call.
  virtual void when_not_busy(const std::string& peer, std::weak_ptr<std::function<void()>> resume) = 0;
  // A call began between a local process and a peer's (gen:call monitors the server first;
  // by_peer: the peer's monitor came in): its request or answer is due within microseconds,
  // which the loop may poll for rather than sleep.
  virtual void call_begun(bool /*by_peer*/) {}
  // A peer's gen:call has its answer: its DEMONITOR_P follows, which nothing waits on, so the
  // transport need not wake for it alone.
  virtual void demonitor_due(const std::string& /*peer*/) {}
};

// Work that must not hold the loop, such as copying megabytes: `work` runs on another thread
// and touches only what it owns; `done` runs on the loop thread afterwards.
class Workers {
 public:
  virtual ~Workers() = default;
  virtual void post(std::function<void()> work, std::function<void()> done) = 0;
};

class Timers {
 public:
  virtual ~Timers() = default;
  virtual uint64_t start(uint64_t ms, std::function<void()> fire) = 0;
  virtual void cancel(uint64_t id) = 0;
  // Milliseconds of a monotonic clock.
  [[nodiscard]] virtual uint64_t now_ms() = 0;
};

}  // namespace chat::node
