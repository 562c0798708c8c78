#include "chat/node/node.hpp"
#include "tables.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "chat/dist/constants.hpp"
#include "chat/term/show.hpp"

namespace chat::node {

using dist::Op;
using term::atom;
using term::Pid;
using term::Ref;
using term::Term;
using term::tuple;

namespace {

Term op(Op o) { return Term{static_cast<int64_t>(o)}; }

size_t mix(size_t h, uint64_t v) { return h ^ (v * 0x9e3779b97f4a7c15ULL + (h << 6U) + (h >> 2U)); }

}  // namespace

size_t PidHash::operator()(const Pid& p) const noexcept {
  size_t h = std::hash<std::string>{}(p.node);
  h = mix(h, (uint64_t{p.serial} << 32U) | p.num);
  return mix(h, p.creation);
}

bool PidLess::operator()(const Pid& a, const Pid& b) const noexcept {
  // The numbers first: a peer's pids share their node name.
  if (a.num != b.num) return a.num < b.num;
  if (a.serial != b.serial) return a.serial < b.serial;
  if (a.creation != b.creation) return a.creation < b.creation;
  return a.node < b.node;
}

bool RefLess::operator()(const Ref& a, const Ref& b) const noexcept {
  if (auto c = a.ids <=> b.ids; c != 0) return c < 0;
  if (a.creation != b.creation) return a.creation < b.creation;
  return a.node < b.node;
}

size_t Node::RefIdsHash::operator()(const RefIds& ids) const noexcept {
  size_t h = ids.size();
  for (auto w : ids) h = mix(h, w);
  return h;
}

Node::Node(std::string name, Transport& transport, Timers& timers)
    : name_(std::move(name)), transport_(transport), timers_(timers) {}

Node::~Node() {
  if (teardown_timer_ != 0) timers_.cancel(teardown_timer_);
}

Node::Entry* Node::find(const Pid& pid) {
  if (!is_local(pid)) return nullptr;
  auto it = procs_.find(local_key(pid));
  return it == procs_.end() ? nullptr : &it->second;
}

const Node::Entry* Node::find(const Pid& pid) const {
  if (!is_local(pid)) return nullptr;
  auto it = procs_.find(local_key(pid));
  return it == procs_.end() ? nullptr : &it->second;
}

Node::Entry* Node::find_target(const Term& target) {
  if (const auto* pid = target.get<Pid>()) return find(*pid);
  if (const auto* name = target.get<term::Atom>()) {
    // Looked up in place: whereis() would copy the pid, and with it the node's name.
    auto it = names_.find(name->name);
    if (it != names_.end()) return find(it->second);
  }
  return nullptr;
}

bool Node::alive(const Pid& pid) const { return find(pid) != nullptr; }

Pid Node::spawn(std::unique_ptr<Process> p, const std::string& registered_name) {
  Process* raw = p.get();
  const Pid pid = insert(std::move(p), registered_name);
  raw->started();
  return pid;
}

Pid Node::insert(std::unique_ptr<Process> p, const std::string& registered_name) {
  // Pid numbers stay within the 15/13-bit ranges every peer and ei accept; a number still in
  // use is skipped, so a long-lived node never hands out a pid twice at once.
  Pid pid{name_, 0, 0, creation_};
  do {
    pid.num = next_num_;
    pid.serial = next_serial_;
    if (++next_num_ > 0x7fff) {
      next_num_ = 1;
      next_serial_ = (next_serial_ + 1) & 0x1fff;
    }
  } while (procs_.contains(local_key(pid)));
  p->node_ = this;
  p->self_ = pid;
  auto& e = procs_[local_key(pid)];
  e.process = std::move(p);
  ++counters_.processes;
  if (!registered_name.empty()) register_name(pid, registered_name);
  return pid;
}

bool Node::register_name(const Pid& pid, const std::string& name) {
  auto* e = find(pid);
  if (e == nullptr || name.empty() || names_.contains(name) || !e->registered_name.empty()) return false;
  e->registered_name = name;
  names_[name] = pid;
  return true;
}

Ref Node::alias(const Pid& owner) {
  Ref ref = make_ref();
  auto* e = find(owner);
  if (e == nullptr) return ref;
  aliases_.emplace(ref.ids, owner);
  e->aliases.push_back(ref.ids);
  return ref;
}

void Node::unalias(const Ref& ref) {
  auto it = aliases_.find(ref.ids);
  if (it == aliases_.end()) return;
  if (auto* e = find(it->second)) std::erase(e->aliases, ref.ids);
  aliases_.erase(it);
}

void Node::send_alias(const Pid& from, const Ref& alias, Term msg) {
  if (alias.node == name_) {
    if (alias.creation != creation_) return;
    auto it = aliases_.find(alias.ids);
    if (it != aliases_.end()) enqueue(Kind::kMessage, from, it->second, std::move(msg));
    return;
  }
  if (!alias_reachable(alias)) return;
  send_remote(alias.node, dist::SendParts::to_alias(from, alias), msg);
}

bool Node::alias_reachable(const Ref& alias) const {
  return alias.node == name_ || (transport_.flags(alias.node) & dist::flag::kAlias) != 0;
}

void Node::reply(const Pid& from, const Pid& caller, Term tag, Term msg) {
  std::optional<Ref> alias;
  if (const auto* l = tag.get<term::List>(); l != nullptr && l->items.size() == 1 && l->items[0].is_atom("alias") &&
                                              l->tail.size() == 1) {
    if (const auto* r = l->tail[0].get<Ref>(); r != nullptr && alias_reachable(*r)) alias = *r;
  }
  Term answer = tuple({std::move(tag), std::move(msg)});
  if (alias) {
    send_alias(from, *alias, std::move(answer));
    // gen:call's alias is its monitor's ref: the caller demonitors as soon as this arrives.
    if (auto peer = by_peer_.find(alias->node); peer != by_peer_.end() && peer->second.in_monitors.contains(*alias)) {
      transport_.demonitor_due(alias->node);
    }
  } else {
    send(from, caller, std::move(answer));
  }
}

std::optional<Pid> Node::whereis(const std::string& name) const {
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  return it->second;
}

Ref Node::make_ref() {
  const uint64_t n = next_ref_++;
  // Three words like a BEAM ref; the first holds 18 bits.
  return Ref{name_, creation_,
             {static_cast<uint32_t>(n & 0x3ffff), static_cast<uint32_t>((n >> 18) & 0xffffffff),
              static_cast<uint32_t>(n >> 50)}};
}

void Node::enqueue(Kind kind, Pid from, const Pid& to, Term data) {
  if (is_local(to)) queue_.push_back(Signal{kind, local_key(to), std::move(from), std::move(data)});
}

void Node::send_remote(const std::string& peer, Term control, const Term* payload) {
  ++counters_.messages_out;
  transport_.send(peer, control, payload);
}

void Node::send_remote(const std::string& peer, const dist::SendParts& send, const term::Term& payload) {
  ++counters_.messages_out;
  transport_.send(peer, send, payload);
}

void Node::send(const Pid& from, const Pid& to, Term msg, bool connect) {
  if (to.node == name_) {
    if (to.creation == creation_) enqueue(Kind::kMessage, from, to, std::move(msg));
    return;  // an old incarnation of this node: the message goes nowhere, as on a BEAM
  }
  if (!connect && transport_.flags(to.node) == 0) return;
  send_remote(to.node, dist::SendParts::pid(to), msg);
}

void Node::send_named(const Pid& from, const std::string& name, const std::string& node_name, Term&& msg,
                      bool connect) {
  if (node_name == name_) {
    if (auto pid = whereis(name)) enqueue(Kind::kMessage, from, *pid, std::move(msg));
    return;
  }
  send_named(from, name, node_name, std::as_const(msg), connect);
}

void Node::send_named(const Pid& from, const std::string& name, const std::string& node_name, const Term& msg,
                      bool connect) {
  if (node_name == name_) {
    send_named(from, name, node_name, Term(msg), connect);
    return;
  }
  if (!connect && transport_.flags(node_name) == 0) return;
  send_remote(node_name, dist::SendParts::registered(from, name), msg);
}

// --- links ------------------------------------------------------------------------------------

bool Node::add_link(const Pid& local, const Pid& other) {
  auto* e = find(local);
  if (e == nullptr || !e->links.insert(other).second) return false;
  ++counters_.links;
  if (other.node != name_) by_peer_[other.node].links[other].insert(local_key(local));
  return true;
}

bool Node::remove_link(const Pid& local, const Pid& other) {
  auto* e = find(local);
  if (e == nullptr || e->links.erase(other) == 0) return false;
  --counters_.links;
  if (other.node == name_) return true;
  // The peer's index is gone already when the peer went down (its exits are in the queue).
  auto peer = by_peer_.find(other.node);
  if (peer == by_peer_.end()) return true;
  auto ends = peer->second.links.find(other);
  if (ends != peer->second.links.end()) {
    ends->second.erase(local_key(local));
    if (ends->second.empty()) peer->second.links.erase(ends);
  }
  return true;
}

bool Node::remote_link_live(const Pid& other, LocalKey local) const {
  auto peer = by_peer_.find(other.node);
  if (peer == by_peer_.end()) return false;
  auto ends = peer->second.links.find(other);
  return ends != peer->second.links.end() && ends->second.contains(local);
}

void Node::link(const Pid& a, const Pid& b) {
  if (find(a) == nullptr || a == b) return;
  if (is_local(b)) {
    if (find(b) == nullptr) {
      // Linking to a dead process: the linker gets the exit at once (noproc).
      add_link(a, b);
      enqueue(Kind::kLinkExit, b, a, atom("noproc"));
      return;
    }
    add_link(a, b);
    add_link(b, a);
    return;
  }
  if (add_link(a, b)) send_remote(b.node, tuple({op(Op::kLink), a, b}), nullptr);
}

void Node::unlink(const Pid& a, const Pid& b) {
  const bool live = b.node == name_ || remote_link_live(b, local_key(a));
  if (!remove_link(a, b)) return;
  if (is_local(b)) {
    remove_link(b, a);
    return;
  }
  if (!live) return;
  if ((transport_.flags(b.node) & dist::flag::kUnlinkId) != 0) {
    const auto id = static_cast<int64_t>(next_ref_++);
    send_remote(b.node, tuple({op(Op::kUnlinkId), Term{id}, a, b}), nullptr);
  } else {
    send_remote(b.node, tuple({op(Op::kUnlink), a, b}), nullptr);
  }
}

// --- monitors ---------------------------------------------------------------------------------

void Node::add_in_monitor(Entry& e, const Ref& ref, InMonitor m) {
  const auto [it, added] = e.monitored_by.emplace(ref, std::move(m));
  if (!added) return;
  ++counters_.monitors;
  const std::string& wnode = it->second.watcher.node;
  if (wnode != name_) by_peer_[wnode].in_monitors.emplace(ref, local_key(e.process->self()));
}

bool Node::remove_in_monitor(Entry& e, const Ref& ref, const Pid* watcher) {
  auto it = e.monitored_by.find(ref);
  if (it == e.monitored_by.end() || (watcher != nullptr && it->second.watcher != *watcher)) return false;
  const std::string& wnode = it->second.watcher.node;
  if (wnode != name_) {
    if (auto peer = by_peer_.find(wnode); peer != by_peer_.end()) {
      peer->second.in_monitors.erase(ref);
    }
  }
  e.monitored_by.erase(it);
  --counters_.monitors;
  return true;
}

Node::OutMonitor Node::take_out_monitor(std::unordered_map<RefIds, OutMonitor, RefIdsHash>::iterator it) {
  OutMonitor m = std::move(it->second);
  const RefIds ids = it->first;
  out_monitors_.erase(it);
  shrink_if_sparse(out_monitors_);
  --counters_.monitors;
  if (auto* w = find(m.watcher)) {
    w->watching.erase(ids);
    shrink_if_sparse(w->watching);
  }
  if (m.target_node != name_) {
    if (auto peer = by_peer_.find(m.target_node); peer != by_peer_.end()) {
      peer->second.out_monitors.erase(ids);
      shrink_if_sparse(peer->second.out_monitors);
    }
  }
  return m;
}

Ref Node::monitor(const Pid& watcher, const Term& target) {
  Ref ref = make_ref();
  auto* w = find(watcher);
  if (w == nullptr) return ref;
  // Target: a pid, or {Name, Node}; the DOWN message names it as given.
  std::string target_node;
  Term monitored;  // on the target's node: the pid, or the name
  if (const auto* pid = target.get<Pid>()) {
    target_node = pid->node;
    monitored = *pid;
  } else if (const auto* t = target.tuple(2); t != nullptr && (*t)[0].get<term::Atom>() && (*t)[1].get<term::Atom>()) {
    target_node = (*t)[1].get<term::Atom>()->name;
    monitored = (*t)[0];
  } else {
    enqueue(Kind::kMessage, watcher, watcher, tuple({atom("DOWN"), ref, atom("process"), target, atom("badarg")}));
    return ref;
  }
  if (target_node == name_) {
    Entry* t = find_target(monitored);
    if (t == nullptr) {
      enqueue(Kind::kMessage, watcher, watcher, tuple({atom("DOWN"), ref, atom("process"), target, atom("noproc")}));
      return ref;
    }
    const Pid tpid = t->process->self();
    add_in_monitor(*t, ref, InMonitor{watcher, monitored});
    out_monitors_.emplace(ref.ids, OutMonitor{watcher, target, name_, tpid, true});
    ++counters_.monitors;
    w->watching.insert(ref.ids);
    return ref;
  }
  auto [it, inserted] = out_monitors_.emplace(ref.ids, OutMonitor{watcher, target, target_node, monitored, false});
  ++counters_.monitors;
  w->watching.insert(ref.ids);
  by_peer_[target_node].out_monitors.insert(ref.ids);
  if (transport_.flags(target_node) != 0) {
    request_monitor(ref.ids, it->second);
  } else {
    // As erlang:monitor/2 does: connect; MONITOR_P goes out when the peer is up (peer_up),
    // or the monitor fires with noconnection if it cannot be reached.
    transport_.connect(target_node);
  }
  return ref;
}

void Node::request_monitor(const RefIds& ids, OutMonitor& m) {
  m.requested = true;
  // A BEAM only expects MONITOR_P when it advertised DIST_MONITOR (and DIST_MONITOR_NAME for a
  // name); without them the monitor watches the connection alone (peer_down fires it).
  const uint64_t f = transport_.flags(m.target_node);
  const bool by_name = m.monitored.get<term::Atom>() != nullptr;
  if ((f & dist::flag::kDistMonitor) == 0 || (by_name && (f & dist::flag::kDistMonitorName) == 0)) return;
  send_remote(m.target_node, tuple({op(Op::kMonitorP), m.watcher, m.monitored, Ref{name_, creation_, ids}}), nullptr);
  transport_.call_begun(false);
}

void Node::demonitor(const Pid& watcher, const Ref& ref) {
  auto it = out_monitors_.find(ref.ids);
  if (it == out_monitors_.end() || it->second.watcher != watcher || ref.node != name_) return;
  const OutMonitor m = take_out_monitor(it);
  if (m.target_node == name_) {
    if (const auto* pid = m.monitored.get<Pid>()) {
      if (auto* t = find(*pid)) remove_in_monitor(*t, ref, nullptr);
    }
    return;
  }
  if (m.requested && (transport_.flags(m.target_node) & dist::flag::kDistMonitor) != 0) {
    send_remote(m.target_node, tuple({op(Op::kDemonitorP), watcher, m.monitored, ref}), nullptr);
  }
}

void Node::down(const RefIds& ids, const OutMonitor& m, const Term& reason) {
  enqueue(Kind::kMessage, m.watcher, m.watcher,
          tuple({atom("DOWN"), Ref{name_, creation_, ids}, atom("process"), m.target, reason}));
}

void Node::monitor_node(const Pid& watcher, const std::string& node_name) {
  auto* w = find(watcher);
  if (w == nullptr || node_name == name_) return;
  node_watchers_[node_name].insert(local_key(watcher));
  w->watched_nodes.insert(node_name);
  if (transport_.flags(node_name) == 0) transport_.connect(node_name);
}

void Node::demonitor_node(const Pid& watcher, const std::string& node_name) {
  if (auto* w = find(watcher)) w->watched_nodes.erase(node_name);
  auto it = node_watchers_.find(node_name);
  if (it == node_watchers_.end()) return;
  it->second.erase(local_key(watcher));
  if (it->second.empty()) node_watchers_.erase(it);
}

void Node::monitor_nodes(const Pid& watcher, bool on) {
  if (find(watcher) == nullptr) return;
  if (on) {
    nodes_watchers_.insert(local_key(watcher));
  } else {
    nodes_watchers_.erase(local_key(watcher));
  }
}

std::vector<std::string> Node::visible_nodes() const { return {visible_.begin(), visible_.end()}; }

void Node::notify_nodes(const std::string& peer, const char* what) {
  for (auto key : nodes_watchers_) {
    auto p = procs_.find(key);
    if (p == procs_.end()) continue;
    const Pid pid = p->second.process->self();
    enqueue(Kind::kMessage, pid, pid, tuple({atom(what), atom(peer)}));
  }
}

// --- timers and exits -------------------------------------------------------------------------

uint64_t Node::start_timer(const Pid& owner, uint64_t ms, std::function<void()> fire) {
  return timers_.start(ms, [this, owner, fire = std::move(fire)] {
    if (find(owner) == nullptr) return;
    fire();
    drain();
  });
}

void Node::cancel_timer(const Pid& /*owner*/, uint64_t id) { timers_.cancel(id); }

void Node::exit(const Pid& pid, Term reason) {
  if (find(pid) == nullptr) return;
  terminate(pid, reason);
}

void Node::exit_signal(const Pid& from, const Pid& to, Term reason) {
  if (to.node == name_) {
    if (to.creation == creation_) enqueue(Kind::kExitSignal, from, to, std::move(reason));
    return;
  }
  send_remote(to.node, tuple({op(Op::kExit2), from, to, std::move(reason)}), nullptr);
}

void Node::terminate(const Pid& pid, const Term& reason) {
  auto it = procs_.find(local_key(pid));
  if (it == procs_.end() || !is_local(pid)) return;
  Entry e = std::move(it->second);
  procs_.erase(it);
  shrink_if_sparse(procs_);
  --counters_.processes;
  if (!e.registered_name.empty()) {
    names_.erase(e.registered_name);
    if (e.registered_name == last_name_) last_name_.clear();
  }
  for (const auto& a : e.aliases) aliases_.erase(a);
  for (auto id : e.process->timers_) timers_.cancel(id);
  e.process->timers_.clear();
  const LocalKey key = local_key(pid);

  for (const auto& other : e.links) {
    --counters_.links;
    if (is_local(other)) {
      enqueue(Kind::kLinkExit, pid, other, reason);
      continue;
    }
    if (other.node == name_) continue;  // an old incarnation of this node
    // Outside its node's index, the link went with the connection that carried it, and its
    // exit to us is on its way: broken already, as on a BEAM (no signal to send, no
    // connection to make for it).
    auto peer = by_peer_.find(other.node);
    if (peer == by_peer_.end()) continue;
    auto ends = peer->second.links.find(other);
    if (ends == peer->second.links.end() || ends->second.erase(key) == 0) continue;
    if (ends->second.empty()) peer->second.links.erase(ends);
    send_remote(other.node, tuple({op(Op::kExit), pid, other, reason}), nullptr);
  }
  for (const auto& [ref, m] : e.monitored_by) {
    --counters_.monitors;
    if (is_local(m.watcher)) {
      if (auto out = out_monitors_.find(ref.ids); out != out_monitors_.end()) {
        const OutMonitor om = take_out_monitor(out);
        down(ref.ids, om, reason);
      }
      continue;
    }
    // A monitor of a departed connection (being undone in slices) goes silently.
    auto peer = by_peer_.find(m.watcher.node);
    if (peer == by_peer_.end() || peer->second.in_monitors.erase(ref) == 0) continue;
    send_remote(m.watcher.node, tuple({op(Op::kMonitorPExit), m.target, m.watcher, ref, reason}), nullptr);
  }
  // Monitors this process held on others are given up.
  for (const auto& ids : e.watching) {
    auto out = out_monitors_.find(ids);
    if (out == out_monitors_.end()) continue;
    const OutMonitor m = take_out_monitor(out);
    const Ref ref{name_, creation_, ids};
    if (m.target_node == name_) {
      if (const auto* target = m.monitored.get<Pid>()) {
        if (auto* t = find(*target)) remove_in_monitor(*t, ref, nullptr);
      }
    } else if (m.requested && (transport_.flags(m.target_node) & dist::flag::kDistMonitor) != 0) {
      send_remote(m.target_node, tuple({op(Op::kDemonitorP), pid, m.monitored, ref}), nullptr);
    }
  }
  for (const auto& n : e.watched_nodes) {
    auto w = node_watchers_.find(n);
    if (w == node_watchers_.end()) continue;
    w->second.erase(key);
    if (w->second.empty()) node_watchers_.erase(w);
  }
  nodes_watchers_.erase(key);
  spdlog::debug("process {} exited: {}", term::show(pid), term::show(reason));
  // Freed after the current signal: this may be running inside the process's own receive().
  graveyard_.push_back(std::move(e.process));
}

void Node::exit_signal(Entry& e, const Pid& from, const Term& reason, bool via_link) {
  const Pid self = e.process->self();
  if (via_link && !remove_link(self, from)) return;  // no link (any more): nothing to do
  if (!via_link && reason.is_atom("kill")) {
    terminate(self, atom("killed"));
    return;
  }
  if (e.process->traps_exits()) {
    e.process->receive(tuple({atom("EXIT"), from, reason}));
    return;
  }
  if (reason.is_atom("normal")) return;
  terminate(self, reason);
}

void Node::deliver(Signal& s) {
  auto it = procs_.find(s.to);
  if (it == procs_.end()) return;
  auto* e = &it->second;
  switch (s.kind) {
    case Kind::kMessage:
      e->process->receive(std::move(s.data));
      break;
    case Kind::kLinkExit:
      exit_signal(*e, s.from, s.data, true);
      break;
    case Kind::kExitSignal:
      exit_signal(*e, s.from, s.data, false);
      break;
  }
}

void Node::drain() {
  if (draining_) return;
  draining_ = true;
  while (queue_head_ < queue_.size()) {
    Signal s = std::move(queue_[queue_head_++]);
    deliver(s);
    // Signals that keep coming while the queue drains: the delivered ones' slots are reused.
    if (queue_head_ >= kKeepSignals && queue_head_ * 2 >= queue_.size()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
      queue_head_ = 0;
    }
  }
  queue_.clear();
  queue_head_ = 0;
  if (queue_.capacity() > kKeepSignals) queue_.shrink_to_fit();
  graveyard_.clear();
  draining_ = false;
}

// --- peers ------------------------------------------------------------------------------------

Counters Node::counters() const { return counters_; }

}  // namespace chat::node
