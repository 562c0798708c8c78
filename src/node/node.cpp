#include "chat/node/node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "chat/dist/constants.hpp"
#include "chat/term/show.hpp"

namespace chat::node {

using term::atom;
using term::Pid;
using term::Ref;
using term::Term;
using term::tuple;
using dist::Op;

namespace {
Term op(Op o) { return Term{static_cast<int64_t>(o)}; }
}  // namespace

Node::Node(std::string name, Transport& transport, Timers& timers)
    : name_(std::move(name)), transport_(transport), timers_(timers) {}

Node::~Node() = default;

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
  if (!registered_name.empty()) {
    e.registered_name = registered_name;
    names_[registered_name] = pid;
  }
  ++counters_.processes;
  return pid;
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
  if (auto* e = find(it->second)) {
    auto& v = e->aliases;
    v.erase(std::remove(v.begin(), v.end(), ref.ids), v.end());
  }
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
  send_remote(alias.node, tuple({op(Op::kAliasSend), from, alias}), &msg);
}

bool Node::alias_reachable(const Ref& alias) const {
  return alias.node == name_ || (transport_.flags(alias.node) & dist::flag::kAlias) != 0;
}

void Node::reply(const Pid& from, const Pid& caller, const Term& tag, Term msg) {
  if (const auto* l = tag.get<term::List>(); l != nullptr && l->items.size() == 1 && l->items[0].is_atom("alias") &&
                                              l->tail.size() == 1) {
    const auto* alias_ref = l->tail[0].get<Ref>();
    if (alias_ref != nullptr && alias_reachable(*alias_ref)) {
      send_alias(from, *alias_ref, tuple({tag, std::move(msg)}));
      return;
    }
  }
  send(from, caller, tuple({tag, std::move(msg)}));
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

void Node::enqueue(Kind kind, const Pid& from, const Pid& to, Term data) {
  queue_.push_back(Signal{kind, from, to, std::move(data)});
}

void Node::send_remote(const std::string& peer, Term control, const Term* payload) {
  ++counters_.messages_out;
  transport_.send(peer, control, payload);
}

void Node::send(const Pid& from, const Pid& to, Term msg) {
  if (to.node == name_) {
    if (to.creation == creation_) enqueue(Kind::kMessage, from, to, std::move(msg));
    return;  // an old incarnation of this node: the message goes nowhere, as on a BEAM
  }
  send_remote(to.node, tuple({op(Op::kSend), atom(""), to}), &msg);
}

void Node::send_named(const Pid& from, const std::string& name, const std::string& node_name, Term msg) {
  if (node_name == name_) {
    if (auto pid = whereis(name)) enqueue(Kind::kMessage, from, *pid, std::move(msg));
    return;
  }
  send_remote(node_name, tuple({op(Op::kRegSend), from, atom(""), atom(name)}), &msg);
}

void Node::add_link(const Pid& local, const Pid& other) {
  auto* e = find(local);
  if (e == nullptr) return;
  if (std::find(e->links.begin(), e->links.end(), other) != e->links.end()) return;
  e->links.push_back(other);
  ++counters_.links;
}

bool Node::remove_link(const Pid& local, const Pid& other) {
  auto* e = find(local);
  if (e == nullptr) return false;
  auto it = std::find(e->links.begin(), e->links.end(), other);
  if (it == e->links.end()) return false;
  e->links.erase(it);
  --counters_.links;
  return true;
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
  add_link(a, b);
  send_remote(b.node, tuple({op(Op::kLink), a, b}), nullptr);
}

void Node::unlink(const Pid& a, const Pid& b) {
  if (!remove_link(a, b)) return;
  if (is_local(b)) {
    remove_link(b, a);
    return;
  }
  if ((transport_.flags(b.node) & dist::flag::kUnlinkId) != 0) {
    const auto id = static_cast<int64_t>(next_ref_++);
    send_remote(b.node, tuple({op(Op::kUnlinkId), Term{id}, a, b}), nullptr);
  } else {
    send_remote(b.node, tuple({op(Op::kUnlink), a, b}), nullptr);
  }
}

Ref Node::monitor(const Pid& watcher, const Pid& target) {
  Ref ref = make_ref();
  if (is_local(target)) {
    auto* t = find(target);
    OutMonitor m{watcher, target, name_};
    if (t == nullptr) {
      down(ref, m, atom("noproc"));
      return ref;
    }
    t->monitored_by.push_back(InMonitor{ref, watcher, target});
    out_monitors_.emplace(ref.ids, std::move(m));
    counters_.monitors += 2;
    return ref;
  }
  out_monitors_.emplace(ref.ids, OutMonitor{watcher, target, target.node});
  ++counters_.monitors;
  // A BEAM only expects MONITOR_P when it advertised DIST_MONITOR; without it the monitor
  // watches the connection alone (peer_down fires it).
  if ((transport_.flags(target.node) & dist::flag::kDistMonitor) != 0) {
    send_remote(target.node, tuple({op(Op::kMonitorP), watcher, target, ref}), nullptr);
  }
  return ref;
}

void Node::demonitor(const Pid& watcher, const Ref& ref) {
  auto it = out_monitors_.find(ref.ids);
  if (it == out_monitors_.end() || it->second.watcher != watcher) return;
  const OutMonitor m = it->second;
  out_monitors_.erase(it);
  --counters_.monitors;
  if (m.target_node == name_) {
    if (const auto* pid = m.target.get<Pid>()) {
      if (auto* t = find(*pid)) {
        auto& v = t->monitored_by;
        const auto before = v.size();
        v.erase(std::remove_if(v.begin(), v.end(), [&](const InMonitor& im) { return im.ref == ref; }), v.end());
        counters_.monitors -= before - v.size();
      }
    }
    return;
  }
  if ((transport_.flags(m.target_node) & dist::flag::kDistMonitor) != 0) {
    send_remote(m.target_node, tuple({op(Op::kDemonitorP), watcher, m.target, ref}), nullptr);
  }
}

void Node::down(const Ref& ref, const OutMonitor& m, const Term& reason) {
  enqueue(Kind::kMessage, m.watcher, m.watcher,
          tuple({atom("DOWN"), ref, atom("process"), m.target, reason}));
}

void Node::monitor_node(const Pid& watcher, const std::string& node_name) {
  node_watchers_[node_name].insert(local_key(watcher));
}

void Node::demonitor_node(const Pid& watcher, const std::string& node_name) {
  auto it = node_watchers_.find(node_name);
  if (it == node_watchers_.end()) return;
  it->second.erase(local_key(watcher));
  if (it->second.empty()) node_watchers_.erase(it);
}

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

void Node::terminate(const Pid& pid, const Term& reason) {
  auto it = procs_.find(local_key(pid));
  if (it == procs_.end() || !is_local(pid)) return;
  Entry e = std::move(it->second);
  procs_.erase(it);
  --counters_.processes;
  if (!e.registered_name.empty()) names_.erase(e.registered_name);
  for (const auto& a : e.aliases) aliases_.erase(a);
  for (auto id : e.process->timers_) timers_.cancel(id);

  for (const auto& other : e.links) {
    --counters_.links;
    if (is_local(other)) {
      enqueue(Kind::kLinkExit, pid, other, reason);
    } else if (other.node != name_) {
      send_remote(other.node, tuple({op(Op::kExit), pid, other, reason}), nullptr);
    }
  }
  for (const auto& m : e.monitored_by) {
    --counters_.monitors;
    if (is_local(m.watcher)) {
      auto out = out_monitors_.find(m.ref.ids);
      if (out != out_monitors_.end()) {
        down(m.ref, out->second, reason);
        out_monitors_.erase(out);
        --counters_.monitors;
      }
    } else {
      send_remote(m.watcher.node, tuple({op(Op::kMonitorPExit), m.target, m.watcher, m.ref, reason}), nullptr);
    }
  }
  // Monitors this process held on others are given up.
  for (auto m = out_monitors_.begin(); m != out_monitors_.end();) {
    if (m->second.watcher == pid) {
      const Ref ref{name_, creation_, m->first};
      auto next = std::next(m);
      demonitor(pid, ref);
      m = next;
    } else {
      ++m;
    }
  }
  for (auto w = node_watchers_.begin(); w != node_watchers_.end();) {
    w->second.erase(local_key(pid));
    w = w->second.empty() ? node_watchers_.erase(w) : std::next(w);
  }
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
  auto* e = find(s.to);
  if (e == nullptr) return;
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
  while (!queue_.empty()) {
    Signal s = std::move(queue_.front());
    queue_.pop_front();
    deliver(s);
  }
  graveyard_.clear();
  draining_ = false;
}

void Node::peer_up(const std::string& peer) { spdlog::info("node {} up", peer); }

void Node::peer_down(const std::string& peer) {
  const Term reason = atom("noconnection");
  // Links to processes of that node break...
  for (auto& [key, e] : procs_) {
    for (auto it = e.links.begin(); it != e.links.end();) {
      if (it->node == peer) {
        // The link stays until the signal runs, so exit_signal() treats it as a link exit.
        enqueue(Kind::kLinkExit, *it, e.process->self(), reason);
      }
      ++it;
    }
    // ...and monitors that processes there held on ours go away silently.
    auto& v = e.monitored_by;
    const auto before = v.size();
    v.erase(std::remove_if(v.begin(), v.end(), [&](const InMonitor& m) { return m.watcher.node == peer; }), v.end());
    counters_.monitors -= before - v.size();
  }
  for (auto it = out_monitors_.begin(); it != out_monitors_.end();) {
    if (it->second.target_node == peer) {
      down(Ref{name_, creation_, it->first}, it->second, reason);
      it = out_monitors_.erase(it);
      --counters_.monitors;
    } else {
      ++it;
    }
  }
  if (auto w = node_watchers_.find(peer); w != node_watchers_.end()) {
    for (auto key : w->second) {
      auto p = procs_.find(key);
      if (p != procs_.end()) {
        const Pid pid = p->second.process->self();
        enqueue(Kind::kMessage, pid, pid, tuple({atom("nodedown"), atom(peer)}));
      }
    }
    node_watchers_.erase(w);
  }
}

Counters Node::counters() const { return counters_; }

}  // namespace chat::node
