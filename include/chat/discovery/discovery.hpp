// DNS service discovery: every interval, resolve each query's A records (the system
// resolver, off the loop thread; nothing is cached, so a missing record is retried next
// round), ask each address's EPMD which nodes live there (NAMES), and connect to every node
// not yet connected — BEAM and C++ alike, with no basename to configure. A query of the form
// NAME@DNSNAME skips EPMD and connects to NAME@address directly.
// A node that leaves DNS keeps its connection while it is alive; a dead one is retried only
// while DNS still lists it (each round connects to what DNS lists now).
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "chat/net/network.hpp"
#include "chat/net/runtime.hpp"

namespace chat::discovery {

class Discovery {
 public:
  Discovery(net::Runtime& runtime, net::Network& network, std::vector<std::string> queries, uint32_t interval_s,
            uint16_t epmd_port, std::string self_name);
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;
  ~Discovery();

  void start();
  void stop();
  [[nodiscard]] const std::set<std::string>& listed() const { return listed_; }
  [[nodiscard]] uint64_t rounds() const { return rounds_; }
  // For /metrics: lookups that failed (a name that does not resolve yet counts too), and
  // EPMD NAMES requests that got no answer.
  [[nodiscard]] uint64_t dns_errors() const { return dns_errors_; }
  [[nodiscard]] uint64_t epmd_errors() const { return epmd_errors_; }

 private:
  void poll();
  void resolved(const std::string& basename, const std::vector<std::string>& addresses);
  void found(const std::string& node_name);
  void step_done();

  net::Runtime& runtime_;
  net::Network& network_;
  std::vector<std::string> queries_;
  uint32_t interval_s_;
  uint16_t epmd_port_;
  std::string self_;
  uint64_t timer_ = 0;
  int outstanding_ = 0;
  uint64_t rounds_ = 0;
  uint64_t dns_errors_ = 0;
  uint64_t epmd_errors_ = 0;
  std::set<std::string> listed_;      // nodes DNS (and EPMD) listed in the last full round
  std::set<std::string> this_round_;
  std::shared_ptr<Discovery*> token_;
  bool stopped_ = false;
};

}  // namespace chat::discovery
