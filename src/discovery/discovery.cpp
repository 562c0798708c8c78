#include "chat/discovery/discovery.hpp"

#include <netdb.h>
#include <spdlog/fmt/ranges.h>  // fmt::join: fmt 11 moved it out of fmt/format.h
#include <spdlog/spdlog.h>

#include <cstring>

#include "chat/epmd/protocol.hpp"
#include "chat/net/epmd_client.hpp"
#include "chat/net/turn_stats.hpp"

namespace chat::discovery {

namespace {

struct Lookup {
  uv_getaddrinfo_t req{};
  std::weak_ptr<Discovery*> owner;
  std::string basename;
  std::string query;
};

}  // namespace

Discovery::Discovery(net::Runtime& runtime, net::Network& network, std::vector<std::string> queries,
                     uint32_t interval_s, uint16_t epmd_port, std::string self_name)
    : runtime_(runtime),
      network_(network),
      queries_(std::move(queries)),
      interval_s_(interval_s),
      epmd_port_(epmd_port),
      self_(std::move(self_name)),
      token_(std::make_shared<Discovery*>(this)) {}

Discovery::~Discovery() {
  stop();
  *token_ = nullptr;
}

void Discovery::start() {
  if (queries_.empty()) return;
  spdlog::info("discovery: polling {} every {} s", fmt::join(queries_, ", "), interval_s_);
  poll();
}

void Discovery::stop() {
  stopped_ = true;
  if (timer_) runtime_.cancel(timer_);
  timer_ = 0;
}

void Discovery::poll() {
  timer_ = 0;
  if (stopped_) return;
  this_round_.clear();
  outstanding_ = 1;  // held until every lookup has been started
  for (const auto& q : queries_) {
    const auto at = q.find('@');
    auto* l = new Lookup;
    l->owner = token_;
    l->basename = at == std::string::npos ? "" : q.substr(0, at);
    l->query = at == std::string::npos ? q : q.substr(at + 1);
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    ++outstanding_;
    const int rc = uv_getaddrinfo(
        runtime_.loop(), &l->req,
        [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
          net::TurnClock::io_began();
          std::unique_ptr<Lookup> l(reinterpret_cast<Lookup*>(req));
          std::vector<std::string> addresses;
          for (auto* a = res; status == 0 && a != nullptr; a = a->ai_next) {
            char ip[INET_ADDRSTRLEN] = {0};
            uv_ip4_name(reinterpret_cast<const sockaddr_in*>(a->ai_addr), ip, sizeof ip);
            if (std::find(addresses.begin(), addresses.end(), ip) == addresses.end()) addresses.emplace_back(ip);
          }
          if (res) uv_freeaddrinfo(res);
          auto owner = l->owner.lock();
          if (!owner || !*owner) return;
          if (status != 0) {
            spdlog::debug("discovery: {} does not resolve: {}", l->query, uv_strerror(status));
            ++(*owner)->dns_errors_;
          }
          (*owner)->resolved(l->basename, addresses);
          (*owner)->step_done();
        },
        l->query.c_str(), nullptr, &hints);
    if (rc != 0) {
      delete l;
      --outstanding_;
      ++dns_errors_;
    }
  }
  step_done();
}

void Discovery::resolved(const std::string& basename, const std::vector<std::string>& addresses) {
  for (const auto& ip : addresses) {
    if (!basename.empty()) {
      found(basename + "@" + ip);
      continue;
    }
    sockaddr_storage epmd{};
    uv_ip4_addr(ip.c_str(), epmd_port_, reinterpret_cast<sockaddr_in*>(&epmd));
    ++outstanding_;
    std::weak_ptr<Discovery*> owner = token_;
    net::EpmdRequest::start(runtime_.loop(), epmd, epmd::names_request(), nullptr,
                            [owner, ip](const std::string& reply, const std::string& error) {
                              auto o = owner.lock();
                              if (!o || !*o) return;
                              if (!error.empty()) {
                                spdlog::debug("discovery: EPMD on {}: {}", ip, error);
                                ++(*o)->epmd_errors_;
                              }
                              for (const auto& [name, port] : epmd::parse_names_reply(reply)) {
                                (*o)->found(name + "@" + ip);
                              }
                              (*o)->step_done();
                            });
  }
}

void Discovery::found(const std::string& node_name) {
  if (node_name == self_) return;
  this_round_.insert(node_name);
  if (!listed_.contains(node_name)) spdlog::info("discovery: {} joined", node_name);
  if (!network_.connecting_or_up(node_name)) network_.connect(node_name);
}

void Discovery::step_done() {
  if (--outstanding_ > 0) return;
  for (const auto& gone : listed_) {
    if (!this_round_.contains(gone)) spdlog::info("discovery: {} left (no longer listed)", gone);
  }
  listed_ = std::move(this_round_);
  this_round_.clear();
  ++rounds_;
  if (!stopped_) timer_ = runtime_.start(uint64_t{interval_s_} * 1000, [this] { poll(); });
}

}  // namespace chat::discovery
