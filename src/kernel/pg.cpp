#include "chat/term/show.hpp"
#include "chat/kernel/pg.hpp"

#include <spdlog/spdlog.h>

#include "chat/kernel/gen.hpp"
#include "chat/kernel/global.hpp"

namespace chat::kernel {

using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

namespace {

// A pid or a list of pids (pg's PidOrPids); nullopt for anything else.
std::optional<std::vector<Pid>> pids_of(const Term& t) {
  if (const auto* p = t.get<Pid>()) return std::vector<Pid>{*p};
  const auto* l = t.get<term::List>();
  if (l == nullptr || !l->tail.empty()) return std::nullopt;
  std::vector<Pid> out;
  out.reserve(l->items.size());
  for (const auto& x : l->items) {
    const auto* p = x.get<Pid>();
    if (p == nullptr) return std::nullopt;
    out.push_back(*p);
  }
  return out;
}

Term pid_list(const std::vector<Pid>& pids) {
  std::vector<Term> items(pids.begin(), pids.end());
  return term::list(std::move(items));
}

}  // namespace

PgScope::~PgScope() {
  if (*registry_ == this) *registry_ = nullptr;
}

void PgScope::started() {
  *registry_ = this;
  node().monitor_nodes(self(), true);
  // Discover every node already connected that runs this scope (pg:init/1).
  for (const auto& n : node().visible_nodes()) node().send_named(self(), scope_, n, tuple({atom("discover"), self()}), false);
}

void PgScope::receive(Term&& msg) {
  const Term* body = parse_gen_cast(msg);
  const Term& m = body != nullptr ? *body : msg;
  const auto* t = m.get<term::Tuple>();
  const auto* tag = t != nullptr && !t->items.empty() ? t->items[0].get<term::Atom>() : nullptr;
  if (tag == nullptr) {
    spdlog::debug("pg: unexpected message {}", term::show(msg));
    return;
  }
  const auto& c = t->items;
  const auto n = c.size();
  const Pid* peer = n >= 2 ? c[1].get<Pid>() : nullptr;
  const bool remote_peer = peer != nullptr && peer->node != node().name();
  if (tag->name == "nodeup" && n == 2) {
    if (const auto* a = c[1].get<term::Atom>(); a != nullptr && a->name != node().name()) {
      node().send_named(self(), scope_, a->name, tuple({atom("discover"), self()}), false);
    }
  } else if (tag->name == "nodedown") {
    // The peer scope's monitor does the work.
  } else if (tag->name == "discover" && (n == 2 || n == 3) && remote_peer) {
    discover(*peer, true);
  } else if (tag->name == "sync" && n == 3 && remote_peer) {
    std::vector<std::pair<Term, std::vector<Pid>>> groups;
    if (const auto* l = c[2].get<term::List>()) {
      for (const auto& g : l->items) {
        const auto* gt = g.tuple(2);
        auto pids = gt != nullptr ? pids_of((*gt)[1]) : std::nullopt;
        if (pids) groups.emplace_back((*gt)[0], std::move(*pids));
      }
    }
    sync(*peer, groups);
  } else if (tag->name == "local_data" && n == 4 && remote_peer) {
    // Version 1: {local_data, Peer, Vsn, #{Group => Pids}}
    std::vector<std::pair<Term, std::vector<Pid>>> groups;
    if (const auto* map = c[3].get<term::Map>()) {
      for (const auto& [g, p] : map->entries) {
        if (auto pids = pids_of(p)) groups.emplace_back(g, std::move(*pids));
      }
    }
    sync(*peer, groups);
  } else if (tag->name == "join" && n == 4 && remote_peer) {
    if (auto pids = pids_of(c[3])) remote_join(*peer, c[2], *pids);
  } else if (tag->name == "leave" && n == 4 && remote_peer) {
    auto pids = pids_of(c[2]);
    const auto* groups = c[3].get<term::List>();
    if (pids && groups != nullptr) {
      for (const auto& g : groups->items) remote_leave(*peer, *pids, g);
    }
  } else if (tag->name == "update" && n == 3 && remote_peer) {
    // Version 1: {update, Peer, [{Group, Add, Remove}]}
    if (const auto* l = c[2].get<term::List>()) {
      for (const auto& u : l->items) {
        const auto* ut = u.tuple(3);
        auto add = ut != nullptr ? pids_of((*ut)[1]) : std::nullopt;
        auto rem = ut != nullptr ? pids_of((*ut)[2]) : std::nullopt;
        if (!add || !rem) continue;
        remote_join(*peer, (*ut)[0], *add);
        remote_leave(*peer, *rem, (*ut)[0]);
      }
    }
  } else if (tag->name == "DOWN" && n == 5) {
    const auto* pid = c[3].get<Pid>();
    if (pid == nullptr) return;
    if (auto l = local_.find(*pid); l != local_.end() && l->second.mref == Term{c[1]}) {
      // A local member died: it leaves its groups, and every peer hears of it.
      const auto groups = l->second.groups;
      local_.erase(l);
      std::vector<Term> distinct;
      for (const auto& g : groups) {
        remove(g, *pid, true);
        if (std::find(distinct.begin(), distinct.end(), g) == distinct.end()) distinct.push_back(g);
      }
      broadcast(tuple({atom("leave"), self(), *pid, term::list(distinct)}));
    } else if (auto r = remote_.find(*pid); r != remote_.end() && Term{r->second.mref} == c[1]) {
      // A peer scope (or its node) went: its members leave.
      for (const auto& [key, g] : r->second.groups) {
        for (const auto& [member, times] : g.second) {
          for (uint32_t i = 0; i < times; ++i) remove(g.first, member, false);
        }
      }
      remote_.erase(r);
    }
  } else {
    spdlog::debug("pg: unexpected message {}", term::show(msg));
  }
}

void PgScope::discover(const Pid& peer, bool answer_back) {
  // Our local membership to the peer, in the version-0 form every pg understands.
  std::vector<Term> groups;
  for (const auto& [g, pids] : local_groups()) groups.push_back(tuple({g, pid_list(pids)}));
  send(peer, tuple({atom("$gen_cast"), tuple({atom("sync"), self(), term::list(std::move(groups))})}));
  if (remote_.contains(peer)) return;
  remote_[peer] = Peer{node().monitor(self(), peer), {}};
  if (answer_back) node().send(self(), peer, tuple({atom("discover"), self()}), false);
}

void PgScope::sync(const Pid& peer, const std::vector<std::pair<Term, std::vector<Pid>>>& groups) {
  auto it = remote_.find(peer);
  if (it == remote_.end()) it = remote_.emplace(peer, Peer{node().monitor(self(), peer), {}}).first;
  // What the peer says it has now replaces what it said before.
  std::map<std::string, std::pair<Term, Members>> now;
  for (const auto& [g, pids] : groups) {
    auto& entry = now[term_key(g)];
    entry.first = g;
    for (const auto& p : pids) ++entry.second[p];
  }
  auto& before = it->second.groups;
  for (const auto& [key, g] : before) {
    for (const auto& [member, times] : g.second) {
      uint32_t keep = 0;
      if (auto n = now.find(key); n != now.end()) {
        if (auto m = n->second.second.find(member); m != n->second.second.end()) keep = std::min(times, m->second);
      }
      for (uint32_t i = keep; i < times; ++i) remove(g.first, member, false);
    }
  }
  for (const auto& [key, g] : now) {
    for (const auto& [member, times] : g.second) {
      uint32_t had = 0;
      if (auto b = before.find(key); b != before.end()) {
        if (auto m = b->second.second.find(member); m != b->second.second.end()) had = m->second;
      }
      for (uint32_t i = had; i < times; ++i) add(g.first, member, false);
    }
  }
  before = std::move(now);
}

void PgScope::remote_join(const Pid& peer, const Term& group, const std::vector<Pid>& pids) {
  // A join from a scope we do not know (flickering node, or a stranger) is dropped, as pg does.
  auto it = remote_.find(peer);
  if (it == remote_.end() || pids.empty()) return;
  auto& entry = it->second.groups[term_key(group)];
  entry.first = group;
  for (const auto& p : pids) {
    ++entry.second[p];
    add(group, p, false);
  }
}

void PgScope::remote_leave(const Pid& peer, const std::vector<Pid>& pids, const Term& group) {
  auto it = remote_.find(peer);
  if (it == remote_.end()) return;
  auto g = it->second.groups.find(term_key(group));
  if (g == it->second.groups.end()) return;
  for (const auto& p : pids) {
    auto m = g->second.second.find(p);
    if (m == g->second.second.end()) continue;
    if (--m->second == 0) g->second.second.erase(m);
    remove(group, p, false);
  }
  if (g->second.second.empty()) it->second.groups.erase(g);
}

void PgScope::add(const Term& group, const Pid& pid, bool local) {
  auto& g = groups_[term_key(group)];
  g.name = group;
  ++g.all[pid];
  if (local) ++g.local[pid];
}

void PgScope::remove(const Term& group, const Pid& pid, bool local) {
  auto it = groups_.find(term_key(group));
  if (it == groups_.end()) return;
  auto& g = it->second;
  const auto drop = [&pid](Members& m) {
    auto x = m.find(pid);
    if (x != m.end() && --x->second == 0) m.erase(x);
  };
  drop(g.all);
  if (local) drop(g.local);
  if (g.all.empty()) groups_.erase(it);
}

void PgScope::broadcast(const Term& msg) {
  for (const auto& [peer, p] : remote_) node().send(self(), peer, msg, false);
}

void PgScope::join(const Term& group, const Pid& pid) {
  auto it = local_.find(pid);
  if (it == local_.end()) it = local_.emplace(pid, LocalMember{node().monitor(self(), pid), {}}).first;
  it->second.groups.push_back(group);
  add(group, pid, true);
  broadcast(tuple({atom("join"), self(), group, pid}));
}

bool PgScope::leave(const Term& group, const Pid& pid) {
  auto it = local_.find(pid);
  if (it == local_.end()) return false;
  auto& gs = it->second.groups;
  auto g = std::find(gs.begin(), gs.end(), group);
  if (g == gs.end()) return false;
  gs.erase(g);
  if (gs.empty()) {
    node().demonitor(self(), it->second.mref);
    local_.erase(it);
  }
  remove(group, pid, true);
  broadcast(tuple({atom("leave"), self(), pid, term::list({group})}));
  return true;
}

std::vector<Pid> PgScope::members(const Term& group, bool local_only) const {
  std::vector<Pid> out;
  auto it = groups_.find(term_key(group));
  if (it == groups_.end()) return out;
  for (const auto& [pid, times] : local_only ? it->second.local : it->second.all) out.insert(out.end(), times, pid);
  return out;
}

std::vector<Term> PgScope::groups(bool local_only) const {
  std::vector<Term> out;
  for (const auto& [key, g] : groups_) {
    if (!local_only || !g.local.empty()) out.push_back(g.name);
  }
  return out;
}

std::vector<std::pair<Term, std::vector<Pid>>> PgScope::local_groups() const {
  std::vector<std::pair<Term, std::vector<Pid>>> out;
  for (const auto& [key, g] : groups_) {
    if (g.local.empty()) continue;
    std::vector<Pid> pids;
    for (const auto& [pid, times] : g.local) pids.insert(pids.end(), times, pid);
    out.emplace_back(g.name, std::move(pids));
  }
  return out;
}

}  // namespace chat::kernel
