// Dialling a peer: its host resolved (off the loop for a name), its port asked of EPMD on
// that host, then the socket (and TLS session) connected; the handshake follows in
// connection.cpp. Every step can fail that one connection with a reason.
#include <spdlog/spdlog.h>

#include <cstring>

#include "chat/dist/constants.hpp"
#include "chat/epmd/protocol.hpp"
#include "chat/net/connection.hpp"
#include "chat/net/epmd_client.hpp"
#include "chat/net/network.hpp"

namespace chat::net {

namespace {

std::string alive_of(const std::string& node) { return node.substr(0, node.find('@')); }
std::string host_of(const std::string& node) {
  const auto at = node.find('@');
  return at == std::string::npos ? std::string{} : node.substr(at + 1);
}

struct Resolve {
  uv_getaddrinfo_t req{};
  std::weak_ptr<Connection*> owner;
};

}  // namespace

Connection::Connection(Network& net, std::string peer)
    : net_(net),
      role_(Role::kInitiator),
      state_(State::kResolving),
      peer_(std::move(peer)),
      reader_(net.config().max_frame),
      token_(std::make_shared<Connection*>(this)) {
  setup_timer_ = net_.runtime().start(net_.config().setup_timeout_ms, [this] {
    setup_timer_ = 0;
    count_timeout();
    close("connection setup timed out");
  });
  const std::string host = host_of(peer_);
  sockaddr_storage addr{};
  auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (uv_ip4_addr(host.c_str(), 0, in4) == 0 || uv_ip6_addr(host.c_str(), 0, in6) == 0) {
    resolved(addr);
    return;
  }
  // A host name: resolve it off the loop thread (libuv's thread pool).
  auto* r = new Resolve;
  r->owner = token_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const int rc = uv_getaddrinfo(
      net_.runtime().loop(), &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        TurnClock::io_began();
        std::unique_ptr<Resolve> r(reinterpret_cast<Resolve*>(req));
        auto owner = r->owner.lock();
        if (owner && *owner) {
          Connection* c = *owner;
          if (status != 0 || res == nullptr) {
            c->net_.counters().connect_failed(ConnectFailure::kResolve);
            c->close("cannot resolve host " + host_of(c->peer_) + ": " + uv_strerror(status));
          } else {
            sockaddr_storage a{};
            std::memcpy(&a, res->ai_addr, res->ai_addrlen);
            c->resolved(a);
          }
        }
        uv_freeaddrinfo(res);
      },
      host.c_str(), nullptr, &hints);
  if (rc != 0) {
    delete r;
    // Fail from the loop, not from inside the send() that created this connection.
    const std::string why = "cannot resolve host " + host + ": " + uv_strerror(rc);
    std::weak_ptr<Connection*> owner = token_;
    net_.runtime().start(0, [owner, why] {
      if (auto o = owner.lock(); o && *o) {
        (*o)->net_.counters().connect_failed(ConnectFailure::kResolve);
        (*o)->close(why);
      }
    });
  }
}

void Connection::resolved(const sockaddr_storage& host) {
  if (state_ == State::kClosed) return;
  state_ = State::kAskingEpmd;
  ask_epmd(host);
}

void Connection::ask_epmd(const sockaddr_storage& host) {
  sockaddr_storage epmd = host;
  const uint16_t port = net_.config().epmd_port;
  if (epmd.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&epmd)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&epmd)->sin6_port = htons(port);
  }
  std::weak_ptr<Connection*> owner = token_;
  EpmdRequest::start(
      net_.runtime().loop(), epmd, epmd::port_please2_request(alive_of(peer_)),
      [](const std::string& reply) { return !std::holds_alternative<epmd::NeedMore>(epmd::parse_port2_reply(reply)); },
      [owner, host](const std::string& reply, const std::string& error) {
        auto o = owner.lock();
        if (o && *o) (*o)->epmd_answered(host, reply, error);
      });
}

void Connection::epmd_answered(const sockaddr_storage& host, const std::string& reply, const std::string& error) {
  if (state_ != State::kAskingEpmd) return;
  // Dozens of answers can come in one turn (calls naming made-up nodes), and a failure runs at
  // once whatever waited on that peer: past the turn's share, the rest wait for the next turn,
  // so that the loop polls (and other peers are served) in between.
  if (net_.runtime().turn_spent()) {
    std::weak_ptr<Connection*> owner = token_;
    net_.runtime().next_turn([owner, host, reply, error] {
      auto o = owner.lock();
      if (o && *o) (*o)->epmd_answered(host, reply, error);
    });
    return;
  }
  if (!error.empty()) {
    net_.counters().connect_failed(ConnectFailure::kEpmd);
    close("cannot reach EPMD on " + host_of(peer_) + ": " + error);
    return;
  }
  const auto r = epmd::parse_port2_reply(reply);
  const auto* found = std::get_if<epmd::NodePort>(&r);
  if (found == nullptr) {
    net_.counters().connect_failed(std::holds_alternative<epmd::NotFound>(r) ? ConnectFailure::kNoSuchNode
                                                                             : ConnectFailure::kEpmd);
    close(std::holds_alternative<epmd::NotFound>(r)
              ? "no node named " + alive_of(peer_) + " on " + host_of(peer_) + " (EPMD)"
              : "malformed EPMD reply");
    return;
  }
  if (found->highest < dist::kHighestVersion) {
    net_.counters().connect_failed(ConnectFailure::kEpmd);  // EPMD told us the version
    close("peer speaks only distribution version " + std::to_string(found->highest));
    return;
  }
  sockaddr_storage target = host;
  if (target.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&target)->sin_port = htons(found->port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&target)->sin6_port = htons(found->port);
  }
  state_ = State::kConnecting;
  stream_ = Stream::create(net_.runtime().loop(), this);
  if (net_.uses_tls()) {
    // The server's certificate must name the host of the node name, as inet_tls_dist
    // checks it (server_name_indication).
    auto session = net_.config().tls.client->client_session(host_of(peer_));
    if (!session) {
      close("cannot start a TLS session");
      return;
    }
    stream_->use_tls(std::move(session));
  }
  stream_->connect(reinterpret_cast<const sockaddr*>(&target));
}

}  // namespace chat::net
