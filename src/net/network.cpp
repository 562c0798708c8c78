#include "chat/net/network.hpp"

#include <malloc.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <bit>
#include <stdexcept>

#include "chat/net/connection.hpp"
#include "chat/net/epmd_client.hpp"

namespace chat::net {

namespace {
// Handshakes in flight from unknown peers beyond this are refused at accept().
constexpr size_t kMaxPendingAccepts = 256;
// Free heap memory kept between ticks, beyond which it is given back.
constexpr size_t kTrimSlack = 2U << 20U;

// Gives free heap back to the system from libuv's thread pool: after a peer that held
// hundreds of MB goes, malloc_trim (and even mallinfo2) walk every free chunk and unmap
// page by page, for up to seconds, which the loop must not wait for. The loop may still wait
// for glibc's arena lock now and then while it runs; small allocations come from its
// per-thread cache.
void trim_in_background(Runtime& runtime) {
  static bool running = false;  // set and cleared on the loop thread
  if (running) return;
  // The heap (brk) is where freed memory waits: while it has not grown by the slack since the
  // first look, there is nothing to give back, and no reason to start libuv's four pool
  // threads for it (an idle node would carry their stacks for nothing).
  static const auto* const heap_at_start = static_cast<const char*>(sbrk(0));
  if (static_cast<const char*>(sbrk(0)) - heap_at_start <= static_cast<ptrdiff_t>(kTrimSlack)) return;
  running = true;
  runtime.post(
      [] {
        if (mallinfo2().fordblks > kTrimSlack) malloc_trim(0);
      },
      [] { running = false; });
}
}  // namespace

Network::Network(Runtime& runtime, NetworkConfig config) : runtime_(runtime), config_(std::move(config)) {
  auto* in4 = reinterpret_cast<sockaddr_in*>(&epmd_addr_);
  uv_ip4_addr("127.0.0.1", config_.epmd_port, in4);
  runtime_.before_poll([this] { closed_.clear(); });
  runtime_.after_writes([this] {
    if (to_settle_.empty()) return;
    settling_.swap(to_settle_);
    for (const auto& w : settling_) {
      if (auto o = w.lock(); o && *o) (*o)->settle_low_water();
    }
    settling_.clear();
  });
}

Network::~Network() {
  stop();
  *token_ = nullptr;
}

void Network::start(std::function<void(uint32_t)> ready, std::function<void(const std::string&)> fatal) {
  listener_ = new uv_tcp_t;
  uv_tcp_init(runtime_.loop(), listener_);
  listener_->data = this;
  sockaddr_in any{};
  uv_ip4_addr("0.0.0.0", config_.listen_port, &any);
  int rc = uv_tcp_bind(listener_, reinterpret_cast<const sockaddr*>(&any), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 511, &Network::on_connection);
  if (rc != 0) throw std::runtime_error(std::string("cannot listen for distribution: ") + uv_strerror(rc));
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  listen_port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  tick();
  ready_ = std::move(ready);
  fatal_ = std::move(fatal);
  register_with_epmd();
}

// Registration, as erl does it: if no EPMD answers at start, start one (`epmd -daemon`, which
// keeps running after us) and try again for a few seconds. Unlike a BEAM, a registered node
// whose EPMD goes away registers again as soon as a new EPMD answers, so it stays reachable
// by name; it keeps its creation, which peers learn in the handshake.
void Network::register_with_epmd() {
  const std::string alive = config_.name.substr(0, config_.name.find('@'));
  registration_ = std::make_unique<EpmdRegistration>(
      runtime_.loop(), epmd_addr_, alive, listen_port_,
      [this](uint32_t creation) {
        epmd_attempts_ = 0;
        if (registered_once_) {
          spdlog::info("registered with EPMD again");
          return;
        }
        registered_once_ = true;
        ready_(creation);
      },
      [this](const std::string& why) {
        if (stopping_) return;
        // Not from inside the registration's own callback: retry from a timer.
        runtime_.start(0, [this, why] { registration_failed(why); });
      });
}

void Network::registration_failed(const std::string& why) {
  if (stopping_) return;
  registration_.reset();
  const bool refused = why.find("refused the registration") != std::string::npos;
  if (refused && !registered_once_) {
    fatal_(why);  // the name is taken: retrying would not help
    return;
  }
  if (registered_once_) {
    if (epmd_attempts_ == 0) spdlog::warn("{}; registering again as soon as EPMD answers", why);
  } else if (epmd_attempts_ == 0 && config_.start_epmd) {
    spdlog::info("no EPMD on port {} ({}); starting one", config_.epmd_port, why);
    start_epmd_daemon();
  } else if (epmd_attempts_ >= kStartupRegistrationAttempts) {
    fatal_(why);
    return;
  }
  ++epmd_attempts_;
  runtime_.start(registered_once_ ? 1000 : 100, [this] {
    if (!stopping_) register_with_epmd();
  });
}

void Network::start_epmd_daemon() {
  auto* req = new uv_process_t;
  uv_process_options_t opts{};
  char file[] = "epmd";
  char daemon[] = "-daemon";
  char* args[] = {file, daemon, nullptr};
  opts.file = file;
  opts.args = args;
  opts.flags = UV_PROCESS_DETACHED;
  opts.exit_cb = [](uv_process_t* p, int64_t, int) {
    TurnClock::io_began();
    close_and_delete(p, p);
  };
  if (const int rc = uv_spawn(runtime_.loop(), req, &opts); rc != 0) {
    spdlog::warn("cannot start epmd: {}", uv_strerror(rc));
    delete req;
  }
}

void Network::stop() {
  if (stopping_) return;
  stopping_ = true;
  registration_.reset();
  std::vector<Connection*> open;
  for (auto& [ptr, c] : all_) open.push_back(ptr);
  for (auto* c : open) c->close("node stopping", false);
  if (ticker_) runtime_.cancel(ticker_);
  ticker_ = 0;
  if (refused_timer_) runtime_.cancel(refused_timer_);
  refused_timer_ = 0;
  if (trim_timer_) runtime_.cancel(trim_timer_);
  trim_timer_ = 0;
  if (listener_) {
    close_and_delete(listener_, listener_);
    listener_ = nullptr;
  }
}

void Network::on_connection(uv_stream_t* server, int status) {
  TurnClock::io_began();
  auto* self = static_cast<Network*>(server->data);
  if (status != 0 || self->stopping_) return;
  Stream* s = Stream::create(self->runtime_.loop(), nullptr);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(s->handle())) != 0) {
    s->close();
    return;
  }
  if (self->uses_tls()) {
    auto session = self->config_.tls.server->server_session();
    if (!session) {
      spdlog::warn("cannot start a TLS session for {}; refusing it", s->peer_address());
      s->close();
      return;
    }
    s->use_tls(std::move(session));
  }
  size_t pending = 0;
  for (const auto& [ptr, c] : self->all_) pending += c->up() ? 0 : 1;
  if (pending >= kMaxPendingAccepts) {
    if (auto skipped = self->warnings().take(self->runtime_.now_ms())) {
      spdlog::warn("too many handshakes in flight; refusing {}{}", s->peer_address(), node::WarnBudget::note(*skipped));
    }
    s->close();
    return;
  }
  ++self->counters_.accepted;
  auto c = std::make_unique<Connection>(*self, s);
  self->all_.emplace(c.get(), std::move(c));
}

dist::Admission Network::admit(Connection& c, const std::string& peer) {
  if (peer == config_.name) return dist::Admission::kNotAllowed;
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) {
    by_peer_[peer] = &c;
    return dist::Admission::kOk;
  }
  Connection* old = it->second;
  if (old->up()) {
    // Either the peer restarted (or lost our connection) and connects again, or this is
    // the losing half of a simultaneous connect whose initiator already gave it up. As
    // net_kernel does, answer "alive": the initiator says whether it still wants this
    // connection, and the old one goes only when the new one is up (connection_up).
    if (replacing_.contains(peer)) return dist::Admission::kBusy;
    replacing_[peer] = &c;
    return dist::Admission::kAlive;
  }
  // Both sides are connecting at once: the greater name keeps its own attempt
  // (net_kernel's rule for a pending connection).
  if (config_.name > peer) return dist::Admission::kNok;
  c.add_queued(old->take_queued());
  old->close("simultaneous connection", false);
  by_peer_[peer] = &c;
  return dist::Admission::kOkSimultaneous;
}

void Network::connection_up(Connection& c) {
  auto it = by_peer_.find(c.peer());
  Connection* old = it != by_peer_.end() && it->second != &c ? it->second : nullptr;
  by_peer_[c.peer()] = &c;  // first, so that what the old one's nodedown sends takes the new one
  if (old != nullptr) {
    replacing_.erase(c.peer());
    spdlog::info("node {} reconnected; dropping its old connection", c.peer());
    old->close("replaced by a new connection");
  }
  spdlog::info("connected to {} ({}{})", c.peer(), c.role() == Connection::Role::kInitiator ? "outgoing" : "incoming",
               c.tls_summary().empty() ? "" : ", " + c.tls_summary());
  node_->peer_up(c.peer());
}

void Network::remove(Connection& c) {
  auto p = by_peer_.find(c.peer());
  if (p != by_peer_.end() && p->second == &c) {
    by_peer_.erase(p);
    maybe_not_busy(c.peer());
  }
  // By value: an acceptor that dies mid-handshake may not have its peer's name set.
  std::erase_if(replacing_, [&c](const auto& kv) { return kv.second == &c; });
  auto it = all_.find(&c);
  if (it != all_.end()) {
    closed_.push_back(std::move(it->second));
    all_.erase(it);
  }
}

void Network::forget(Connection& c) { remove(c); }

bool Network::busy(const std::string& peer) const {
  auto it = by_peer_.find(peer);
  return it != by_peer_.end() && it->second->queued_bytes() > config_.busy_limit;
}

void Network::when_not_busy(const std::string& peer, std::weak_ptr<std::function<void()>> resume) {
  auto& waiting = busy_waiters_[peer];
  // Waiters that gave up (timed out, exited) stay until the peer drains: they are swept out
  // each time the list doubles, so it holds at most twice the live ones.
  if (waiting.size() >= 64 && std::has_single_bit(waiting.size())) {
    std::erase_if(waiting, [](const auto& w) { return w.expired(); });
  }
  waiting.push_back(std::move(resume));
  maybe_not_busy(peer);
}

void Network::maybe_not_busy(const std::string& peer) {
  if (busy_waiters_.empty() || stopping_ || busy(peer)) return;
  auto it = busy_waiters_.find(peer);
  if (it == busy_waiters_.end()) return;
  // From the loop, not inside the write callback or the send that found the peer busy.
  runtime_.start(0, [waiting = std::move(it->second)] {
    for (const auto& w : waiting) {
      if (auto resume = w.lock()) (*resume)();
    }
  });
  busy_waiters_.erase(it);
}

void Network::trim_soon() {
  if (stopping_) return;
  // What a burst leaves behind is freed a little later (a printed message at once, a call's
  // arguments when the call ends, a peer's monitors when it goes): look once a second for
  // the next half minute.
  last_burst_ms_ = runtime_.now_ms();
  trim_until_ms_ = last_burst_ms_ + 30'000;
  if (trim_timer_ == 0) trim_timer_ = runtime_.start(1000, [this] { trim(); });
}

void Network::trim_if_quiet() {
  if (runtime_.now_ms() - last_burst_ms_ < 1000) return;
  if (node_ == nullptr || !node_->tearing_down()) trim_in_background(runtime_);
}

void Network::trim() {
  trim_timer_ = 0;
  trim_if_quiet();
  if (!stopping_ && runtime_.now_ms() < trim_until_ms_) trim_timer_ = runtime_.start(1000, [this] { trim(); });
}

void Network::connection_failed(Connection& c, const std::string& why) {
  const bool owned = by_peer_.contains(c.peer()) && by_peer_[c.peer()] == &c;
  remove(c);
  if (c.role() == Connection::Role::kInitiator) {
    if (auto skipped = warnings().take(runtime_.now_ms())) {
      spdlog::warn("cannot connect to {}: {}{}", c.peer(), why, node::WarnBudget::note(*skipped));
    }
    if (on_connect_failed) on_connect_failed(c.peer(), why);
  } else {
    if (auto skipped = warnings().take(runtime_.now_ms())) {
      spdlog::warn("incoming connection{}{} refused: {}{}", c.peer().empty() ? "" : " from ", c.peer(), why,
                   node::WarnBudget::note(*skipped));
    }
  }
  // Whoever was waiting on that peer (links, monitors, node monitors) learns it is down.
  if (owned && !stopping_) {
    node_->peer_down(c.peer());
    node_->drain();
  }
}

void Network::connection_closed(Connection& c, const std::string& why) {
  ++counters_.disconnects;
  remove(c);
  spdlog::info("disconnected from {}: {}", c.peer(), why);
  if (stopping_) return;
  node_->peer_down(c.peer());
  node_->drain();
  trim_soon();
}

std::string Network::attempt_refused(const std::string& peer) const {
  size_t attempts = 0;
  size_t resolving = 0;
  for (const auto& [ptr, c] : all_) {
    if (c->role() != Connection::Role::kInitiator || c->up()) continue;
    ++attempts;
    resolving += c->state() == Connection::State::kResolving ? 1 : 0;
  }
  if (attempts >= config_.max_connect_attempts) {
    return std::to_string(attempts) + " connections already being set up (--max-connect-attempts)";
  }
  const std::string host = peer.substr(peer.find('@') + 1);
  sockaddr_in6 probe{};
  const bool numeric = uv_ip4_addr(host.c_str(), 0, reinterpret_cast<sockaddr_in*>(&probe)) == 0 ||
                       uv_ip6_addr(host.c_str(), 0, &probe) == 0;
  if (!numeric && resolving >= config_.max_resolving) {
    return std::to_string(resolving) + " host name lookups already in flight";
  }
  return {};
}

void Network::refuse_later(const std::string& peer, const std::string& why) {
  if (!refused_names_.insert(peer).second) return;
  ++refused_count_;
  refused_.emplace_back(peer, why);
  if (refused_timer_ != 0 || refused_going_on_) return;
  refused_timer_ = runtime_.start(0, [this] {
    refused_timer_ = 0;
    report_refused();
  });
}

// Thousands of attempts can be refused in one burst (calls naming made-up nodes, past
// --max-connect-attempts), and each wakes whoever waited on its peer: they are reported
// within the turn's share (Runtime::turn_spent), the rest in the turns after.
void Network::report_refused() {
  if (!refused_going_on_ && !refused_.empty()) {
    if (auto skipped = warnings().take(runtime_.now_ms())) {
      const auto& [p, why] = refused_.front();
      spdlog::warn("{} connection attempt(s) refused at once, to {}{}: {}{}", refused_.size(), p,
                   refused_.size() > 1 ? " and others" : "", why, node::WarnBudget::note(*skipped));
    }
  }
  size_t done = 0;
  while (!refused_.empty() && !stopping_ && (done == 0 || !runtime_.turn_spent())) {
    ++done;
    auto [p, why] = std::move(refused_.front());
    refused_.pop_front();
    refused_names_.erase(p);
    if (on_connect_failed) on_connect_failed(p, why);
    // Whoever was waiting on that peer learns it is down, as after a failed attempt; what
    // that wakes runs now, counted in the turn's share.
    if (!by_peer_.contains(p)) node_->peer_down(p);
    node_->drain();
  }
  if (stopping_) return;
  refused_going_on_ = !refused_.empty();
  if (!refused_going_on_) return;
  std::weak_ptr<Network*> owner = token_;
  runtime_.next_turn([owner] {
    if (auto o = owner.lock(); o && *o) (*o)->report_refused();
  });
}

Connection* Network::connection_to(const std::string& peer) {
  auto it = by_peer_.find(peer);
  if (it != by_peer_.end()) return it->second;
  if (const std::string why = attempt_refused(peer); !why.empty()) {
    refuse_later(peer, why);
    return nullptr;
  }
  ++counters_.initiated;
  auto owned = std::make_unique<Connection>(*this, peer);
  Connection* c = owned.get();
  all_.emplace(c, std::move(owned));
  by_peer_[peer] = c;
  return c;
}

void Network::send(const std::string& peer, const term::Term& control, const term::Term* payload) {
  if (stopping_ || peer == config_.name) return;
  if (payload != nullptr) runtime().answered();
  if (Connection* c = connection_to(peer)) c->queue(control, payload);
}

void Network::send(const std::string& peer, const dist::SendParts& send, const term::Term& payload) {
  if (stopping_ || peer == config_.name) return;
  runtime().answered();
  if (Connection* c = connection_to(peer)) c->queue(send, payload);
}

void Network::call_begun(bool by_peer) { runtime().call_begun(by_peer); }

void Network::demonitor_due(const std::string& peer) {
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) it->second->demonitor_due();
}

void Network::connect(const std::string& peer) {
  if (stopping_ || peer == config_.name) return;
  connection_to(peer);
}

void Network::hold(const std::string& peer) {
  auto it = by_peer_.find(peer);
  if (it != by_peer_.end() && gate_ != nullptr && gate_->shut()) it->second->pause();
}

size_t Network::paused_peers() const {
  size_t n = 0;
  for (const auto& [ptr, c] : all_) n += c->paused() ? 1 : 0;
  return n;
}

void Network::disconnect(const std::string& peer) {
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) return;
  it->second->close("disconnected (erlang:disconnect_node)");
}

std::vector<PeerStatus> Network::peer_status() const {
  std::vector<PeerStatus> out;
  for (const auto& [name, c] : by_peer_) {
    if (c->up()) out.push_back(PeerStatus{name, c->offered_flags(), c->up_since_ms(), c->role() == Connection::Role::kAcceptor});
  }
  return out;
}

size_t Network::queued_bytes() const {
  size_t n = 0;
  for (const auto& [ptr, c] : all_) n += c->queued_bytes();
  return n;
}

uint64_t Network::flags(const std::string& peer) const {
  auto it = by_peer_.find(peer);
  return it != by_peer_.end() && it->second->up() ? it->second->flags() : 0;
}

std::vector<std::string> Network::peers() const {
  std::vector<std::string> out;
  for (const auto& [name, c] : by_peer_) {
    if (c->up()) out.push_back(name);
  }
  return out;
}

void Network::tick() {
  // One timer for all connections, at a quarter of net_ticktime like the BEAM's ticker.
  const uint64_t now = runtime_.now_ms();
  // What a burst freed (a peer's calls holding large arguments, a flood the node printed)
  // goes back to the system: glibc keeps freed heap below its trim threshold for reuse,
  // which an idle node does not need.
  trim_if_quiet();
  std::vector<Connection*> snapshot;
  for (auto& [ptr, c] : all_) snapshot.push_back(ptr);
  for (auto* c : snapshot) {
    if (all_.contains(c)) c->tick(now);
  }
  ticker_ = 0;
  if (!stopping_) ticker_ = runtime_.start(uint64_t{config_.net_ticktime_s} * 250, [this] { tick(); });
}

}  // namespace chat::net
