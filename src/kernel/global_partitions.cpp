// global_name_server, continued: the OTP 25+ "prevent overlapping partitions" messages
// (global.erl handle_info({lost_connection, ...}), inform_connection_loss/2), the views of the
// known nodes the connect algorithm sends, and this node's own requests to the server.
#include <spdlog/spdlog.h>

#include "chat/term/show.hpp"
#include "chat/kernel/global.hpp"
#include "global_terms.hpp"

namespace chat::kernel {

using global_terms::atom_name;
using global_terms::atoms;
using global_terms::int_of;
using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

// --- prevent overlapping partitions -----------------------------------------------------------

void GlobalServer::inform_connection_loss(const std::string& nd) {
  if (!connect_all_ || !prevent_overlapping_partitions_) return;
  const Term xcre{creation_extension_ + static_cast<int64_t>(node().creation()) + (int64_t{1} << 59U)};
  const Term msg = tuple({atom("lost_connection"), atom(node().name()), xcre, Term{next_op_id_++}, atom(nd)});
  volatile_multicast(msg, nd, kGlobalPopVsn);
}

void GlobalServer::lost_connection(const Term& msg) {
  // {lost_connection, NodeA, XCreationA, OpIdA, NodeB}: NodeA lost NodeB. If we are connected
  // to NodeB, we leave it, so that partitions never overlap.
  if (!connect_all_ || !prevent_overlapping_partitions_) return;
  const auto& c = msg.get<term::Tuple>()->items;
  const auto* a = atom_name(c[1]);
  const auto* b = atom_name(c[4]);
  if (a == nullptr || b == nullptr) return;
  const auto key = std::make_pair(*a, *b);
  auto it = lost_connections_.find(key);
  if (it != lost_connections_.end() && it->second.xcreation == c[2]) {
    const auto mine = int_of(it->second.op_id);
    const auto theirs = int_of(c[3]);
    if (mine && theirs && *theirs <= *mine) return;  // seen already
  }
  ++shared_->stats.lost_connections;
  // Passed on, so that every node hears of it even if NodeA goes while multicasting.
  volatile_multicast(msg, *a, kGlobalPopVsn);
  uint64_t old_timer = it != lost_connections_.end() ? it->second.timer : 0;
  if (old_timer != 0) cancel_timer(old_timer);
  const uint64_t timer = after(60 * 60 * 1000, [this, key] { lost_connections_.erase(key); });
  lost_connections_[key] = LostConnection{c[2], c[3], timer};
  const std::string rm = node().name() == *b ? *a : *b;
  if (!potentially_known(rm)) return;
  const char* what = "requested disconnect from";
  if (node_vsn(rm) < kGlobalPopVsn) {
    node().disconnect(rm);
    what = "disconnected old";
  } else {
    volatile_send(rm, tuple({atom("remove_connection"), atom(node().name())}));
  }
  node().peer_warn("'global' at node {} {} node {} in order to prevent overlapping partitions", node().name(), what, rm);
  handle_nodedown(rm, Down::kRemoveConnection);
}

// gns_volatile_send/2: never sets up a connection.
void GlobalServer::volatile_send(const std::string& nd, Term msg) {
  node().send_named(self(), kGlobalName, nd, std::move(msg), false);
}

void GlobalServer::volatile_multicast(const Term& msg, const std::string& ignore, int64_t min_vsn) {
  for (const auto* table : {&known_, &pending_}) {
    for (const auto& [nd, v] : *table) {
      if (nd != ignore && v >= min_vsn) volatile_send(nd, msg);
    }
  }
}

bool GlobalServer::potentially_known(const std::string& nd) const { return known_.contains(nd) || pending_.contains(nd); }

int64_t GlobalServer::node_vsn(const std::string& nd) const {
  if (nd == node().name()) return kGlobalVsn;
  if (auto it = known_.find(nd); it != known_.end()) return it->second;
  if (auto it = pending_.find(nd); it != pending_.end()) return it->second;
  return 0;
}

Term GlobalServer::known_list(int64_t vsn) const {
  std::vector<Term> out;
  for (const auto& [nd, v] : known_) out.push_back(vsn < kGlobalPopVsn ? atom(nd) : tuple({atom(nd), Term{v}}));
  return term::list(std::move(out));
}

Term GlobalServer::known_map() const {
  term::Map m;
  for (const auto& [nd, v] : known_) m.entries.emplace_back(atom(nd), Term{v});
  for (const auto& [nd, v] : pending_) m.entries.emplace_back(tuple({atom("pending"), atom(nd)}), Term{v});
  return m;
}

std::vector<std::string> GlobalServer::known_nodes() const {
  std::vector<std::string> out;
  for (const auto& [nd, v] : known_) out.push_back(nd);
  return out;
}

// --- this node's own requests -------------------------------------------------------------------

void GlobalServer::register_name(const Term& name, const Pid& pid, std::function<void(bool)> done) {
  const int64_t id = shared_->next_done++;
  shared_->done[id] = std::move(done);
  send(registrar_, tuple({atom("register"), name, pid, Term{id}}));
}

void GlobalServer::unregister_name(const Term& name, std::function<void(bool)> done) {
  const int64_t id = shared_->next_done++;
  shared_->done[id] = std::move(done);
  send(registrar_, tuple({atom("unregister"), name, Term{id}}));
}

void GlobalServer::sync(std::function<void()> done) {
  SyncWaiter w{std::move(done), {}};
  for (const auto& nd : node().visible_nodes()) {
    if (std::find(synced_.begin(), synced_.end(), nd) == synced_.end()) w.nodes.insert(nd);
  }
  if (w.nodes.empty()) {
    w.done();
    return;
  }
  syncers_.push_back(std::move(w));
}

}  // namespace chat::kernel
