// dist-swarm: many Erlang distribution peers in one process, for benchmarking a node's
// connection handling. Every peer is a real TCP connection that performs the version 6
// handshake with the project's chat::dist::Handshake state machine and then exchanges
// distribution frames (chat::dist::FrameReader) and ticks. One thread, one epoll set.
//
//   dist-swarm hold  --target NAME@127.0.0.1 --cookie C --steps 100,1000 [--rss-pid PID]
//       Opens peers until each step's total is reached, waits until every open peer has
//       received ticks from the target, samples the target's resident memory, and reports.
//   dist-swarm churn --target NAME@127.0.0.1 --cookie C --count N
//       N handshakes, each connection dropped as soon as it is up: connection setup rate.
//   hold and churn take --ssl-dist-optfile FILE: every peer then connects over TLS with the
//       optfile's client options (chat::tls::Session), as `erl -proto_dist inet_tls` would.
//   dist-swarm sink  --name NAME@127.0.0.1 --cookie C
//       Registers with EPMD and accepts connections; counts binaries sent to any process and
//       answers gen_server :count calls with that count. The cheapest possible receiver,
//       used to measure how fast a BEAM sender can send at all.
//
// Peers announce themselves without DFLAG_PUBLISHED (hidden nodes): a BEAM target would
// otherwise start a `global` name-registry sync with each of them, which they cannot answer.
// Lines on stdout are `word key=value ...`; exit status is 0 unless the tool could not run.
#include <sys/epoll.h>

#include <algorithm>
#include <fstream>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <random>

#include "chat/dist/bytes.hpp"
#include "chat/dist/constants.hpp"
#include "chat/dist/framing.hpp"
#include "chat/dist/handshake.hpp"
#include "chat/epmd/protocol.hpp"
#include "chat/term/term.hpp"
#include "chat/tls/engine.hpp"
#include "chat/tls/openssl.hpp"
#include "common.hpp"

namespace {

using chat::dist::FrameReader;
using chat::dist::Handshake;
namespace flag = chat::dist::flag;
namespace term = chat::term;

volatile std::sig_atomic_t g_stop = 0;

std::mt19937& rng() {
  static std::mt19937 r{std::random_device{}()};
  return r;
}

std::string alive_of(const std::string& node) { return node.substr(0, node.find('@')); }

// --epmd-port, else $ERL_EPMD_PORT as for erl, else 4369.
uint16_t epmd_port_of(const bench::Args& args) {
  const char* env = std::getenv("ERL_EPMD_PORT");
  return static_cast<uint16_t>(args.num("epmd-port", env != nullptr ? std::stoull(env) : 4369));
}

// Blocking request/reply with EPMD on 127.0.0.1; returns the reply once `complete` says so
// or EPMD closes. The socket is handed back in `keep` if wanted (ALIVE2 lives as long as it).
std::string epmd_exchange(uint16_t epmd_port, const std::string& request,
                          const std::function<bool(const std::string&)>& complete, int* keep = nullptr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in a = bench::loopback(epmd_port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    throw std::runtime_error("cannot reach EPMD on port " + std::to_string(epmd_port) + ": " + strerror(errno));
  }
  if (!bench::write_all(fd, request)) throw std::runtime_error("EPMD write failed");
  std::string reply;
  char buf[4096];
  while (!complete(reply)) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  if (keep != nullptr) {
    *keep = fd;
  } else {
    close(fd);
  }
  return reply;
}

uint16_t lookup_port(uint16_t epmd_port, const std::string& node) {
  namespace epmd = chat::epmd;
  const std::string reply = epmd_exchange(
      epmd_port, epmd::port_please2_request(alive_of(node)),
      [](const std::string& r) { return !std::holds_alternative<epmd::NeedMore>(epmd::parse_port2_reply(r)); });
  const auto parsed = epmd::parse_port2_reply(reply);
  if (const auto* p = std::get_if<epmd::NodePort>(&parsed)) return p->port;
  throw std::runtime_error("EPMD does not know " + node);
}

struct Peer {
  enum class State { kConnecting, kHandshake, kUp, kClosed };
  int fd = -1;
  uint64_t index = 0;
  State state = State::kConnecting;
  bool acceptor = false;
  std::optional<Handshake> handshake;
  FrameReader reader{size_t{1} << 30};
  std::string out;
  std::unique_ptr<chat::tls::Session> tls;  // --ssl-dist-optfile
  std::string plain_pending;                // written before the TLS handshake ended
  bool watching_out = false;
  uint64_t ticks = 0;      // ticks received
  uint64_t tick_mark = 0;  // ticks at the start of the current wait
  uint64_t last_tx_ms = 0;
  double started_s = 0;
  double up_s = 0;
};

// Drives peers over one epoll set; modes plug in through the callbacks.
class Swarm {
 public:
  struct Config {
    std::string cookie;
    // Pass-through frames only: no DIST_HDR_ATOM_CACHE, so no peer sends a distribution header.
    uint64_t flags = flag::kOurs & ~flag::kPublished & ~flag::kDistHdrAtomCache;
    uint64_t tick_ms = 1000;  // send a tick after this long without writing
    std::shared_ptr<chat::tls::Context> tls;  // client side of an optfile, or none
  };

  std::function<void(Peer&)> on_up;
  std::function<void(Peer&, std::string_view)> on_frame;
  std::function<void(Peer&, const std::string&)> on_closed;  // failed or lost

  explicit Swarm(Config cfg) : cfg_(std::move(cfg)), ep_(epoll_create1(EPOLL_CLOEXEC)) {}

  Peer& connect(uint16_t port, const std::string& our_name, uint64_t index) {
    auto p = std::make_unique<Peer>();
    p->index = index;
    p->started_s = bench::now_s();
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    bench::set_nodelay(p->fd);
    p->handshake.emplace(Handshake::Role::kInitiator, handshake_config(our_name));
    if (cfg_.tls) p->tls = cfg_.tls->client_session(our_name.substr(our_name.find('@') + 1));
    const sockaddr_in a = bench::loopback(port);
    Peer& ref = *p;
    peers_.push_back(std::move(p));
    const int rc = ::connect(ref.fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    if (rc != 0 && errno != EINPROGRESS) {
      fail(ref, std::string("connect: ") + strerror(errno));
      return ref;
    }
    watch(ref, EPOLLIN | EPOLLOUT);
    ref.watching_out = true;
    return ref;
  }

  void adopt_accepted(int fd, const std::string& our_name) {
    auto p = std::make_unique<Peer>();
    p->fd = fd;
    p->acceptor = true;
    p->state = Peer::State::kHandshake;
    p->started_s = bench::now_s();
    bench::set_nonblocking(fd);
    bench::set_nodelay(fd);
    p->handshake.emplace(Handshake::Role::kAcceptor, handshake_config(our_name));
    watch(*p, EPOLLIN);
    peers_.push_back(std::move(p));
  }

  void listen_on(int fd, std::function<void()> on_accept) {
    listen_fd_ = fd;
    on_accept_ = std::move(on_accept);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void send(Peer& p, std::string_view bytes) {
    if (p.state == Peer::State::kClosed) return;
    if (p.tls) {
      if (!p.tls->established()) {
        p.plain_pending.append(bytes);
        return;
      }
      if (!p.tls->write(bytes)) return fail(p, "TLS: " + p.tls->error());
      std::string records;
      p.tls->take_output(records);
      p.out += records;
    } else {
      p.out.append(bytes);
    }
    p.last_tx_ms = bench::now_ms();
    flush(p);
  }

  // Drops a peer (abortive close) without reporting it.
  void drop(Peer& p) {
    if (p.state == Peer::State::kClosed) return;
    p.state = Peer::State::kClosed;
    epoll_ctl(ep_, EPOLL_CTL_DEL, p.fd, nullptr);
    bench::close_abortive(p.fd);
    p.fd = -1;
    p.handshake.reset();
    garbage_ = true;
  }

  // One round of I/O, waiting at most `timeout_ms`; also sends due ticks.
  void poll(int timeout_ms) {
    epoll_event evs[256];
    const int n = epoll_wait(ep_, evs, 256, timeout_ms);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        if (on_accept_) on_accept_();
        continue;
      }
      auto* p = static_cast<Peer*>(evs[i].data.ptr);
      if (p->state == Peer::State::kClosed) continue;
      if ((evs[i].events & EPOLLOUT) != 0) writable(*p);
      if (p->state != Peer::State::kClosed && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) readable(*p);
    }
    const uint64_t now = bench::now_ms();
    if (now - last_tick_scan_ms_ >= 100) {
      last_tick_scan_ms_ = now;
      std::string tick;
      chat::dist::append_tick(tick);
      for (auto& p : peers_) {
        if (p->state == Peer::State::kUp && now - p->last_tx_ms >= cfg_.tick_ms) send(*p, tick);
      }
    }
    if (garbage_) {
      std::erase_if(peers_, [](const auto& p) { return p->state == Peer::State::kClosed; });
      garbage_ = false;
    }
  }

  std::vector<std::unique_ptr<Peer>>& peers() { return peers_; }

 private:
  chat::dist::HandshakeConfig handshake_config(const std::string& our_name) const {
    chat::dist::HandshakeConfig c;
    c.our_name = our_name;
    c.our_flags = cfg_.flags;
    c.required_flags = flag::kMandatory25;
    c.our_creation = static_cast<uint32_t>(rng()()) | 1U;
    c.cookie = cfg_.cookie;
    c.random32 = [] { return static_cast<uint32_t>(rng()()); };
    c.admit = [](const std::string&) { return chat::dist::Admission::kOk; };
    c.length_bytes = cfg_.tls ? 4 : 2;  // inet_tls_dist's {packet, 4}
    return c;
  }

  void watch(Peer& p, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &p;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, p.fd, &ev) != 0) epoll_ctl(ep_, EPOLL_CTL_MOD, p.fd, &ev);
  }

  void rewatch(Peer& p, bool want_out) {
    if (p.watching_out == want_out) return;
    p.watching_out = want_out;
    epoll_event ev{};
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0U);
    ev.data.ptr = &p;
    epoll_ctl(ep_, EPOLL_CTL_MOD, p.fd, &ev);
  }

  void fail(Peer& p, const std::string& why) {
    if (p.state == Peer::State::kClosed) return;
    drop(p);
    if (on_closed) on_closed(p, why);
  }

  void flush(Peer& p) {
    if (p.state == Peer::State::kConnecting) return;
    while (!p.out.empty()) {
      const ssize_t n = ::send(p.fd, p.out.data(), p.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        p.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      fail(p, std::string("write: ") + strerror(errno));
      return;
    }
    rewatch(p, !p.out.empty());
  }

  void writable(Peer& p) {
    if (p.state == Peer::State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail(p, std::string("connect: ") + strerror(err));
        return;
      }
      p.state = Peer::State::kHandshake;
      if (p.tls) {
        // The distribution handshake waits for TLS's (send() holds it until then).
        p.tls->start();
        p.plain_pending += p.handshake->take_output();
        p.tls->take_output(p.out);
      } else {
        p.out += p.handshake->take_output();
      }
    }
    flush(p);
  }

  void readable(Peer& p) {
    static char buf[256 * 1024];
    for (;;) {
      const ssize_t n = ::read(p.fd, buf, sizeof buf);
      if (n == 0) return fail(p, "closed by the target");
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return fail(p, std::string("read: ") + strerror(errno));
      }
      const std::string_view bytes(buf, static_cast<size_t>(n));
      if (p.tls) {
        if (!tls_received(p, bytes)) return;
        continue;
      }
      deliver(p, bytes);
      if (p.state == Peer::State::kClosed) return;
    }
  }

  // Ciphertext in: decrypts and delivers; false once the peer is closed.
  bool tls_received(Peer& p, std::string_view bytes) {
    static char plain[16384];
    const bool was_up = p.tls->established();
    p.tls->feed(bytes);
    for (;;) {
      const auto r = p.tls->read(plain);
      if (r.status == chat::tls::Session::Status::kData) {
        deliver(p, std::string_view(plain, r.n));
        if (p.state == Peer::State::kClosed) return false;
        continue;
      }
      if (r.status != chat::tls::Session::Status::kNeedMore) {
        fail(p, "TLS: " + (p.tls->error().empty() ? std::string("closed") : p.tls->error()));
        return false;
      }
      break;
    }
    p.tls->end_feed();
    if (!was_up && p.tls->established() && !p.plain_pending.empty()) {
      const std::string pending = std::exchange(p.plain_pending, {});
      send(p, pending);
      if (p.state == Peer::State::kClosed) return false;
    }
    if (p.tls->has_output()) {
      std::string records;
      p.tls->take_output(records);
      p.out += records;
      flush(p);
    }
    return p.state != Peer::State::kClosed;
  }

  // Plaintext in: the handshake's, then frames.
  void deliver(Peer& p, std::string_view bytes) {
    if (p.state == Peer::State::kHandshake) {
      const auto r = p.handshake->feed(bytes);
      if (p.handshake->has_output()) send(p, p.handshake->take_output());
      if (r == Handshake::Result::kFailed) return fail(p, "handshake: " + p.handshake->error());
      if (r == Handshake::Result::kNeedMore || p.state == Peer::State::kClosed) return;
      const std::string leftover(p.handshake->leftover());
      p.handshake.reset();
      p.state = Peer::State::kUp;
      p.up_s = bench::now_s();
      if (on_up) on_up(p);
      if (p.state != Peer::State::kUp) return;
      if (!leftover.empty()) frames(p, leftover);
    } else if (p.state == Peer::State::kUp) {
      frames(p, bytes);
    }
  }

  void frames(Peer& p, std::string_view bytes) {
    p.reader.feed(bytes);
    std::string_view frame;
    for (;;) {
      switch (p.reader.next(&frame)) {
        case FrameReader::Status::kNeedMore:
          return;
        case FrameReader::Status::kTick:
          ++p.ticks;
          break;
        case FrameReader::Status::kMalformed:
          return fail(p, "malformed frame");
        case FrameReader::Status::kFrame:
          if (on_frame) on_frame(p, frame);
          if (p.state != Peer::State::kUp) return;
          break;
      }
    }
  }

  Config cfg_;
  int ep_;
  int listen_fd_ = -1;
  std::function<void()> on_accept_;
  std::vector<std::unique_ptr<Peer>> peers_;
  uint64_t last_tick_scan_ms_ = 0;
  bool garbage_ = false;
};

std::string run_id() {
  static const char* digits = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 6; ++i) s.push_back(digits[rng()() % 36]);
  return s;
}

// The client side of --ssl-dist-optfile FILE, or none.
std::shared_ptr<chat::tls::Context> client_tls(const bench::Args& args) {
  const std::string file = args.str("ssl-dist-optfile");
  if (file.empty()) return nullptr;
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file);
  std::stringstream text;
  text << in.rdbuf();
  chat::tls::install(&chat::tls::openssl_engine());
  const auto parsed = chat::tls::parse_optfile(text.str());
  if (!parsed.ok()) throw std::runtime_error(file + ": " + parsed.error);
  return chat::tls::make_contexts(parsed.options, file).client;
}

std::vector<uint64_t> parse_steps(const std::string& s) {
  std::vector<uint64_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoull(item));
  if (out.empty() || !std::is_sorted(out.begin(), out.end()))
    throw std::invalid_argument("--steps: increasing totals, e.g. 100,1000");
  return out;
}

// ---- hold ------------------------------------------------------------------------------------

int run_hold(const bench::Args& args) {
  const std::string target = args.need("target");
  const uint16_t port = lookup_port(epmd_port_of(args), target);
  const auto steps = parse_steps(args.str("steps", "100,1000"));
  const uint64_t concurrency = args.num("concurrency", 32);
  const uint64_t need_ticks = args.num("ticks", 2);
  const uint64_t tick_deadline_ms = args.num("tick-deadline-ms", 20000);
  const long rss_pid = static_cast<long>(args.num("rss-pid", 0));
  const std::string host = target.substr(target.find('@') + 1);
  const std::string prefix = args.str("prefix", "swarm") + run_id();

  Swarm::Config cfg;
  cfg.cookie = args.need("cookie");
  cfg.tick_ms = args.num("tick-ms", 1000);
  cfg.tls = client_tls(args);
  Swarm swarm(cfg);

  uint64_t started = 0, in_flight = 0, up = 0, failed = 0, lost = 0;
  std::string last_error;
  swarm.on_up = [&](Peer&) { --in_flight, ++up; };
  swarm.on_closed = [&](Peer& p, const std::string& why) {
    last_error = why;
    if (p.up_s > 0) {
      --up, ++lost;
    } else {
      --in_flight, ++failed;
    }
  };

  if (rss_pid != 0) {
    std::printf("idle rss_kb=%llu anon_kb=%llu\n", static_cast<unsigned long long>(bench::tree_rss_kb(rss_pid)),
                static_cast<unsigned long long>(bench::tree_rss_kb(rss_pid, "RssAnon")));
  }
  std::fflush(stdout);
  for (const uint64_t total : steps) {
    const double t0 = bench::now_s();
    const uint64_t up_before = up;
    while (started < total || in_flight > 0) {
      while (started < total && in_flight < concurrency) {
        swarm.connect(port, prefix + "n" + std::to_string(started) + "@" + host, started);
        ++started, ++in_flight;
      }
      swarm.poll(20);
      if (g_stop) return 1;
    }
    const double setup_s = bench::now_s() - t0;
    // Every open peer must now hear from the target: ticks prove the target keeps serving
    // each connection (and that ours reach it, or it would drop us after its net_ticktime).
    for (auto& p : swarm.peers()) p->tick_mark = p->ticks;
    const double w0 = bench::now_s();
    uint64_t ticked = 0;
    for (;;) {
      ticked = 0;
      for (auto& p : swarm.peers()) {
        if (p->state == Peer::State::kUp && p->ticks - p->tick_mark >= need_ticks) ++ticked;
      }
      if (ticked == up || (bench::now_s() - w0) * 1000 > static_cast<double>(tick_deadline_ms)) break;
      swarm.poll(20);
      if (g_stop) return 1;
    }
    const double tick_wait_s = bench::now_s() - w0;
    const uint64_t rss = rss_pid != 0 ? bench::tree_rss_kb(rss_pid) : 0;
    const uint64_t anon = rss_pid != 0 ? bench::tree_rss_kb(rss_pid, "RssAnon") : 0;
    const uint64_t added = up - std::min(up, up_before);
    std::printf(
        "step peers=%llu up=%llu failed=%llu lost=%llu setup_s=%.4f handshakes_per_s=%.0f ticked=%llu "
        "tick_wait_s=%.2f rss_kb=%llu anon_kb=%llu%s%s\n",
        static_cast<unsigned long long>(total), static_cast<unsigned long long>(up),
        static_cast<unsigned long long>(failed), static_cast<unsigned long long>(lost), setup_s,
        static_cast<double>(added) / setup_s, static_cast<unsigned long long>(ticked), tick_wait_s,
        static_cast<unsigned long long>(rss), static_cast<unsigned long long>(anon),
        last_error.empty() ? "" : " last_error=", last_error.empty() ? "" : ("\"" + last_error + "\"").c_str());
    std::fflush(stdout);
  }
  for (auto& p : swarm.peers()) swarm.drop(*p);
  return up > 0 ? 0 : 2;
}

// ---- churn -----------------------------------------------------------------------------------

int run_churn(const bench::Args& args) {
  const std::string target = args.need("target");
  const uint16_t port = lookup_port(epmd_port_of(args), target);
  const uint64_t count = args.num("count", 1000);
  const uint64_t concurrency = args.num("concurrency", 32);
  const std::string host = target.substr(target.find('@') + 1);
  const std::string prefix = args.str("prefix", "churn") + run_id();

  Swarm::Config cfg;
  cfg.cookie = args.need("cookie");
  cfg.tls = client_tls(args);
  Swarm swarm(cfg);
  uint64_t started = 0, in_flight = 0, ok = 0, failed = 0;
  std::vector<double> latency_ms;
  std::string last_error;
  swarm.on_up = [&](Peer& p) {
    --in_flight, ++ok;
    latency_ms.push_back((p.up_s - p.started_s) * 1000);
    swarm.drop(p);
  };
  swarm.on_closed = [&](Peer&, const std::string& why) {
    --in_flight, ++failed;
    last_error = why;
  };
  const double t0 = bench::now_s();
  while (started < count || in_flight > 0) {
    while (started < count && in_flight < concurrency) {
      swarm.connect(port, prefix + "n" + std::to_string(started) + "@" + host, started);
      ++started, ++in_flight;
    }
    swarm.poll(20);
    if (g_stop) return 1;
  }
  const double secs = bench::now_s() - t0;
  std::sort(latency_ms.begin(), latency_ms.end());
  const double p50 = latency_ms.empty() ? 0 : latency_ms[latency_ms.size() / 2];
  std::printf("churn handshakes=%llu failed=%llu secs=%.4f handshakes_per_s=%.0f p50_ms=%.3f%s%s\n",
              static_cast<unsigned long long>(ok), static_cast<unsigned long long>(failed), secs,
              static_cast<double>(ok) / secs, p50,
              last_error.empty() ? "" : " last_error=", last_error.empty() ? "" : ("\"" + last_error + "\"").c_str());
  return ok > 0 ? 0 : 2;
}

// ---- sink ------------------------------------------------------------------------------------

int run_sink(const bench::Args& args) {
  namespace epmd = chat::epmd;
  const std::string name = args.need("name");
  const uint16_t epmd_port = epmd_port_of(args);

  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = bench::loopback(0);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 128) != 0) {
    throw std::runtime_error(std::string("listen: ") + strerror(errno));
  }
  socklen_t alen = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen);
  const uint16_t port = ntohs(a.sin_port);

  int epmd_fd = -1;
  const std::string reply = epmd_exchange(
      epmd_port, epmd::alive2_request(alive_of(name), port, chat::dist::kHighestVersion, chat::dist::kLowestVersion),
      [](const std::string& r) {
        size_t used = 0;
        return !std::holds_alternative<epmd::NeedMore>(epmd::parse_alive2_reply(r, &used));
      },
      &epmd_fd);
  size_t used = 0;
  if (!std::holds_alternative<epmd::Registered>(epmd::parse_alive2_reply(reply, &used))) {
    throw std::runtime_error("EPMD refused the name " + name);
  }

  Swarm::Config cfg;
  cfg.cookie = args.need("cookie");
  Swarm swarm(cfg);
  uint64_t binaries = 0, frames = 0;
  swarm.listen_on(lfd, [&] {
    for (;;) {
      const int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      swarm.adopt_accepted(fd, name);
    }
  });
  swarm.on_frame = [&](Peer& p, std::string_view frame) {
    ++frames;
    // Fast path: a REG_SEND whose payload is a binary, recognised from its bytes without
    // decoding: <<112, 131, 104 (small tuple), Arity, 97 (small integer), 6 (REG_SEND), ...>>
    // ending in <<131, 109 (binary), Len:32, Bytes:Len>>. Anything else is decoded.
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(frame[i]); };
    if (frame.size() > 12 && byte(2) == 104 && byte(4) == 97 && byte(5) == 6) {
      for (size_t at = frame.size() >= 6 ? frame.size() - 6 : 0; at > 5; --at) {
        if (byte(at) == 131 && byte(at + 1) == 109 && chat::dist::get_u32(frame, at + 2) == frame.size() - at - 6) {
          ++binaries;
          return;
        }
        if (frame.size() - at > 64 + 6) break;  // only small binaries take the fast path
      }
    }
    auto msg = chat::dist::parse_message(frame);
    if (!msg || !msg->payload) return;
    if (msg->payload->get<term::Binary>() != nullptr) {
      ++binaries;
      return;
    }
    // {'$gen_call', {From, Tag}, _} → {Tag, Count} sent to From.
    const auto* call = msg->payload->tuple(3);
    if (call == nullptr || !(*call)[0].is_atom("$gen_call")) return;
    const auto* from = (*call)[1].tuple(2);
    if (from == nullptr || (*from)[0].get<term::Pid>() == nullptr) return;
    const term::Term control = term::tuple({term::Term{int64_t{2}}, term::atom(""), (*from)[0]});
    const term::Term reply_payload = term::tuple({(*from)[1], term::Term{static_cast<int64_t>(binaries)}});
    std::string out;
    chat::dist::append_frame(out, control, &reply_payload);
    swarm.send(p, out);
  };
  std::printf("sink ready name=%s port=%u\n", name.c_str(), port);
  std::fflush(stdout);
  while (!g_stop) swarm.poll(100);
  std::printf("sink frames=%llu binaries=%llu\n", static_cast<unsigned long long>(frames),
              static_cast<unsigned long long>(binaries));
  close(epmd_fd);
  return 0;
}

void usage() {
  std::fprintf(
      stderr,
      "usage: dist-swarm hold  --target NODE --cookie C [--steps 100,1000] [--concurrency 32] [--rss-pid PID]\n"
      "                        [--ticks 2] [--tick-deadline-ms 20000] [--tick-ms 1000] [--epmd-port P]\n"
      "       dist-swarm churn --target NODE --cookie C [--count 1000] [--concurrency 32] [--epmd-port P]\n"
      "       (hold and churn: [--ssl-dist-optfile FILE] to connect over TLS)\n"
      "       dist-swarm sink  --name NODE --cookie C [--epmd-port P]\n"
      "EPMD's port defaults to $ERL_EPMD_PORT, else 4369.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 64;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  try {
    const bench::Args args(argc, argv, 2);
    const std::string mode = argv[1];
    if (mode == "hold") return run_hold(args);
    if (mode == "churn") return run_churn(args);
    if (mode == "sink") return run_sink(args);
    usage();
    return 64;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "dist-swarm: %s\n", e.what());
    usage();
    return 64;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist-swarm: %s\n", e.what());
    return 1;
  }
}
