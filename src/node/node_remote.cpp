// Distribution control messages arriving from peers (erts "Distribution Protocol" chapter,
// "Protocol between Connected Nodes"), and what a peer's coming and going does to the links
// and monitors that name it. Anything that does not have the documented shape is reported as
// malformed and closes that one connection.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "chat/dist/constants.hpp"
#include "chat/dist/framing.hpp"
#include "chat/term/show.hpp"
#include "chat/node/node.hpp"
#include "tables.hpp"

namespace chat::node {

using dist::Op;
using term::atom;
using term::Pid;
using term::Ref;
using term::Term;
using term::tuple;

namespace {

const Pid* as_pid(const Term& t) { return t.get<Pid>(); }
const Ref* as_ref(const Term& t) { return t.get<Ref>(); }

}  // namespace

bool Node::message(const std::string& peer, dist::Message&& m) {
  if (!m.send) return control(peer, m.control, std::move(m.payload));
  if (!m.has_payload()) return false;
  auto& s = *m.send;
  // A message's sender goes nowhere: Erlang messages do not carry it.
  const auto key = std::visit([&](const auto& to) { return recipient(peer, to); }, s.to);
  if (key) deliver_in(*key, m);
  return true;
}

std::optional<Node::LocalKey> Node::recipient(const std::string& /*peer*/, const dist::PidView& to) {
  ++counters_.messages_in;
  if (to.node == name_ && to.creation == creation_) return local_key(to);
  return std::nullopt;
}

std::optional<Node::LocalKey> Node::recipient(const std::string& peer, std::string_view to_name) {
  ++counters_.messages_in;
  // A flood names one process over and over: the last name found answers without a hash.
  if (!last_name_.empty() && to_name == last_name_) return last_name_key_;
  if (auto it = names_.find(to_name); it != names_.end()) {
    const LocalKey key = local_key(it->second);
    if (auto p = procs_.find(key); p != procs_.end()) {
      last_name_.assign(to_name);
      last_name_key_ = key;
      last_name_proc_ = p->second.process.get();
    }
    return key;
  }
  spdlog::debug("message from {} to unregistered name {} dropped", peer, to_name);
  return std::nullopt;
}

void Node::deliver_in(LocalKey to, dist::Message& m) {
  // Straight to the process only when nothing waits in the queue, which keeps the order of
  // everything sent to it.
  if (m.binary && !draining_ && queue_head_ == queue_.size()) {
    Process* p = !last_name_.empty() && to == last_name_key_ ? last_name_proc_ : nullptr;
    if (p == nullptr) {
      auto it = procs_.find(to);
      if (it == procs_.end()) return;  // a dead pid: dropped, as deliver() drops it
      p = it->second.process.get();
    }
    if (p->take_binary(*m.binary)) return;
  }
  enqueue_message(to, m.take_payload());
}

bool Node::control(const std::string& peer, const Term& control, std::optional<Term> payload) {
  const auto* items = control.get<term::Tuple>();
  if (items == nullptr || items->items.empty()) return false;
  const auto& c = items->items;
  const auto* code = c[0].get<int64_t>();
  if (code == nullptr) return false;
  const auto n = c.size();
  auto need_payload = [&]() { return payload.has_value(); };

  switch (static_cast<Op>(*code)) {
    case Op::kSend:
    case Op::kSendTt:
    case Op::kSendSender:
    case Op::kSendSenderTt: {
      // {2, Unused, ToPid}, {22, FromPid, ToPid}, and the _TT forms with a trace token after.
      // Plain SEND does not name its sender; SEND_SENDER's must be a pid, though a message does
      // not carry it.
      const bool sender = static_cast<Op>(*code) == Op::kSendSender || static_cast<Op>(*code) == Op::kSendSenderTt;
      if (n < 3 || !need_payload()) return false;
      const auto* to = as_pid(c[2]);
      const auto* from = sender ? as_pid(c[1]) : to;
      if (from == nullptr || to == nullptr) return false;
      if (auto key = recipient(peer, dist::PidView{to->node.str(), to->num, to->serial, to->creation})) {
        enqueue_message(*key, std::move(*payload));
      }
      return true;
    }
    case Op::kRegSend:
    case Op::kRegSendTt: {
      // {6, FromPid, Unused, ToName}
      if (n < 4 || !need_payload()) return false;
      const auto* from = as_pid(c[1]);
      const auto* name = c[3].get<term::Atom>();
      if (from == nullptr || name == nullptr) return false;
      if (auto key = recipient(peer, name->name)) enqueue_message(*key, std::move(*payload));
      return true;
    }
    case Op::kLink: {
      // A link or monitor names its requester, which must live on the peer that sent it: the
      // tables are indexed by that node, and cleared when it goes down.
      const auto* from = n == 3 ? as_pid(c[1]) : nullptr;
      const auto* to = n == 3 ? as_pid(c[2]) : nullptr;
      if (from == nullptr || to == nullptr || from->node != peer) return false;
      remote_link(peer, *from, *to);
      return true;
    }
    case Op::kUnlink: {
      const auto* from = n == 3 ? as_pid(c[1]) : nullptr;
      const auto* to = n == 3 ? as_pid(c[2]) : nullptr;
      if (from == nullptr || to == nullptr) return false;
      remove_link(*to, *from);
      return true;
    }
    case Op::kUnlinkId: {
      // {35, Id, FromPid, ToPid}: remove the link and acknowledge with the same Id.
      const auto* from = n == 4 ? as_pid(c[2]) : nullptr;
      const auto* to = n == 4 ? as_pid(c[3]) : nullptr;
      if (from == nullptr || to == nullptr) return false;
      remove_link(*to, *from);
      send_remote(peer, tuple({Term{static_cast<int64_t>(Op::kUnlinkIdAck)}, c[1], *to, *from}), nullptr);
      return true;
    }
    case Op::kUnlinkIdAck:
      return n == 4;
    case Op::kExit:
    case Op::kExit2:
    case Op::kExitTt:
    case Op::kExit2Tt:
    case Op::kPayloadExit:
    case Op::kPayloadExit2:
    case Op::kPayloadExitTt:
    case Op::kPayloadExit2Tt: {
      // {3, From, To, Reason}, {13, From, To, Token, Reason}, {24, From, To} + Reason, …
      const auto o = static_cast<Op>(*code);
      const bool in_payload = o == Op::kPayloadExit || o == Op::kPayloadExit2 || o == Op::kPayloadExitTt ||
                              o == Op::kPayloadExit2Tt;
      const bool traced = o == Op::kExitTt || o == Op::kExit2Tt || o == Op::kPayloadExitTt || o == Op::kPayloadExit2Tt;
      const size_t arity = 3 + (traced ? 1 : 0) + (in_payload ? 0 : 1);
      if (n != arity || (in_payload && !payload)) return false;
      const auto* from = as_pid(c[1]);
      const auto* to = as_pid(c[2]);
      if (from == nullptr || to == nullptr) return false;
      Term reason = in_payload ? std::move(*payload) : c[n - 1];
      const bool via_link = o == Op::kExit || o == Op::kExitTt || o == Op::kPayloadExit || o == Op::kPayloadExitTt;
      if (is_local(*to)) enqueue(via_link ? Kind::kLinkExit : Kind::kExitSignal, *from, *to, std::move(reason));
      return true;
    }
    case Op::kMonitorP: {
      // {19, FromPid, ToProc, Ref}; ToProc is a pid or a registered name.
      const auto* from = n == 4 ? as_pid(c[1]) : nullptr;
      const auto* ref = n == 4 ? as_ref(c[3]) : nullptr;
      if (from == nullptr || ref == nullptr || from->node != peer) return false;
      return remote_monitor(peer, *from, c[2], *ref);
    }
    case Op::kDemonitorP: {
      const auto* from = n == 4 ? as_pid(c[1]) : nullptr;
      const auto* ref = n == 4 ? as_ref(c[3]) : nullptr;
      if (from == nullptr || ref == nullptr) return false;
      return remote_demonitor(*from, c[2], *ref);
    }
    case Op::kMonitorPExit:
    case Op::kPayloadMonitorPExit: {
      // {21, FromProc, ToPid, Ref, Reason} / {28, FromProc, ToPid, Ref} + Reason
      const bool in_payload = static_cast<Op>(*code) == Op::kPayloadMonitorPExit;
      if (n != (in_payload ? 4U : 5U) || (in_payload && !payload)) return false;
      const auto* to = as_pid(c[2]);
      const auto* ref = as_ref(c[3]);
      if (to == nullptr || ref == nullptr) return false;
      remote_monitor_exit(*to, *ref, in_payload ? *payload : c[4]);
      return true;
    }
    case Op::kSpawnRequest:
    case Op::kSpawnRequestTt:
      // {29, ReqId, From, GroupLeader, {M, F, Arity}, Opts} + Args (+ Token for _TT)
      if (n != (static_cast<Op>(*code) == Op::kSpawnRequest ? 6U : 7U) || !payload) return false;
      return remote_spawn(peer, c, *payload);
    case Op::kAliasSend:
    case Op::kAliasSendTt: {
      // {33, FromPid, Alias} + Message
      const auto* from = n >= 3 ? as_pid(c[1]) : nullptr;
      const auto* alias = n >= 3 ? as_ref(c[2]) : nullptr;
      if (from == nullptr || alias == nullptr || !payload) return false;
      ++counters_.messages_in;
      send_alias(*from, *alias, std::move(*payload));
      return true;
    }
    case Op::kGroupLeader:
    case Op::kNodeLink:
      return true;  // group leaders of our processes are not remote; nothing to do
    case Op::kSpawnReply:
    case Op::kSpawnReplyTt:
      return n >= 5;  // we never send SPAWN_REQUEST: nobody waits for the reply
    default:
      // Operations we never negotiated (spawn, alias): a well-behaved peer does not send them.
      peer_warn("peer {} sent unsupported control message {}", peer, term::show(control));
      ++counters_.malformed;
      return true;
  }
}

void Node::remote_link(const std::string& peer, const Pid& from, const Pid& to) {
  if (find(to) == nullptr) {
    // As a BEAM does: linking to a process that is gone gets an immediate noproc exit.
    send_remote(peer, tuple({Term{static_cast<int64_t>(Op::kExit)}, to, from, atom("noproc")}), nullptr);
    return;
  }
  add_link(to, from);
}

bool Node::remote_spawn(const std::string& peer, const std::vector<Term>& c, const Term& args) {
  const auto* req = as_ref(c[1]);
  const auto* from = as_pid(c[2]);
  const auto* gl = as_pid(c[3]);
  const auto* mfa = c[4].tuple(3);
  const auto* opts = c[5].get<term::List>();
  const auto* arglist = args.get<term::List>();
  if (req == nullptr || from == nullptr || gl == nullptr || mfa == nullptr || opts == nullptr || arglist == nullptr ||
      !opts->tail.empty() || !arglist->tail.empty()) {
    return false;
  }
  const auto* mod = (*mfa)[0].get<term::Atom>();
  const auto* fun = (*mfa)[1].get<term::Atom>();
  if (mod == nullptr || fun == nullptr) return false;

  bool link_opt = false;
  bool monitor_opt = false;
  for (const auto& o : opts->items) {
    // link, monitor and {monitor, MonitorOpts} concern us; other spawn options (priority,
    // heap sizes…) have no meaning here and are accepted as a BEAM accepts them.
    if (o.is_atom("link")) link_opt = true;
    if (o.is_atom("monitor")) monitor_opt = true;
    if (const auto* t = o.tuple(2); t != nullptr && (*t)[0].is_atom("monitor")) monitor_opt = true;
  }
  auto reply = [&](int64_t flags, Term result) {
    send_remote(peer, tuple({Term{static_cast<int64_t>(Op::kSpawnReply)}, *req, *from, Term{flags}, std::move(result)}),
                nullptr);
  };
  if (!spawn_handler_) {
    reply(0, atom("notsup"));
    return true;
  }
  auto process = spawn_handler_(mod->name, fun->name, arglist->items);
  process->group_leader_ = *gl;
  Process* raw = process.get();
  const Pid pid = insert(std::move(process), {});
  int64_t flags = 0;
  if (link_opt) {
    add_link(pid, *from);
    flags |= 1;
  }
  if (monitor_opt) {
    add_in_monitor(*find(pid), *req, InMonitor{*from, pid});
    flags |= 2;
  }
  // SPAWN_REPLY goes out before anything the new process does, so the requester learns the
  // pid before any exit or message from it.
  reply(flags, pid);
  raw->started();
  return true;
}

bool Node::remote_monitor(const std::string& peer, const Pid& watcher, const Term& target, const Ref& ref) {
  if (target.get<Pid>() == nullptr && target.get<term::Atom>() == nullptr) return false;
  Entry* e = find_target(target);
  if (e == nullptr) {
    send_remote(peer, tuple({Term{static_cast<int64_t>(Op::kMonitorPExit)}, target, watcher, ref, atom("noproc")}),
                nullptr);
    return true;
  }
  add_in_monitor(*e, ref, InMonitor{watcher, target});
  transport_.call_begun(true);
  return true;
}

bool Node::remote_demonitor(const Pid& watcher, const Term& target, const Ref& ref) {
  if (target.get<Pid>() == nullptr && target.get<term::Atom>() == nullptr) return false;
  // By name, the monitor is on the process the name meant when it was set; a DEMONITOR_P
  // naming it after a re-registration finds the old process through its pid index instead.
  if (Entry* e = find_target(target); e != nullptr && remove_in_monitor(*e, ref, &watcher)) return true;
  if (auto peer = by_peer_.find(watcher.node); peer != by_peer_.end()) {
    if (auto it = peer->second.in_monitors.find(ref); it != peer->second.in_monitors.end()) {
      if (auto p = procs_.find(it->second); p != procs_.end()) remove_in_monitor(p->second, ref, &watcher);
    }
  }
  return true;
}

void Node::remote_monitor_exit(const Pid& to, const Ref& ref, const Term& reason) {
  auto it = out_monitors_.find(ref.ids);
  if (it == out_monitors_.end() || it->second.watcher != to || !is_local(to) || ref.node != name_) {
    return;  // demonitored already
  }
  const OutMonitor m = take_out_monitor(it);
  down(ref.ids, m, reason);
}

// --- peers coming and going ----------------------------------------------------------------

void Node::peer_up(const std::string& peer) {
  spdlog::info("node {} up", peer);
  // Back before its last connection was undone: finish that first, so that nothing of the old
  // connection (a link exit, a stale monitor) mixes with the new one.
  if (std::any_of(departed_.begin(), departed_.end(), [&](const Departed& d) { return d.peer == peer; })) {
    teardown_some(SIZE_MAX);
  }
  // nodeup goes into the queue before anything the peer sends on this connection.
  if (!hidden_ && (transport_.flags(peer) & dist::flag::kPublished) != 0 && visible_.insert(peer).second) {
    notify_nodes(peer, "nodeup");
  }
  auto idx = by_peer_.find(peer);
  if (idx == by_peer_.end()) return;
  for (const auto& ids : idx->second.out_monitors) {
    auto m = out_monitors_.find(ids);
    if (m != out_monitors_.end() && !m->second.requested) request_monitor(ids, m->second);
  }
}

void Node::peer_down(const std::string& peer) {
  if (auto pit = by_peer_.find(peer); pit != by_peer_.end()) {
    departed_.push_back(Departed{peer, std::move(pit->second)});
    by_peer_.erase(pit);
    if (!teardown_some(kTeardownSlice)) schedule_teardown();
  }
  if (auto w = node_watchers_.find(peer); w != node_watchers_.end()) {
    for (auto key : w->second) {
      auto p = procs_.find(key);
      if (p == procs_.end()) continue;
      p->second.watched_nodes.erase(peer);
      const Pid pid = p->second.process->self();
      enqueue(Kind::kMessage, pid, pid, tuple({atom("nodedown"), atom(peer)}));
    }
    node_watchers_.erase(w);
  }
  if (visible_.erase(peer) != 0) notify_nodes(peer, "nodedown");
}

void Node::schedule_teardown() {
  if (teardown_timer_ != 0) return;
  // 1 ms, not 0: libuv runs a timer started from a timer callback with 0 ms in the same pass,
  // and the slices would all run before the loop polls again.
  teardown_timer_ = timers_.start(1, [this] {
    teardown_timer_ = 0;
    if (!teardown_some(kTeardownSlice)) schedule_teardown();
    drain();
  });
}

bool Node::teardown_some(size_t budget) {
  const Term reason = atom("noconnection");
  while (!departed_.empty()) {
    PeerIndex& idx = departed_.front().idx;
    // Links to processes of that node break; each link stays until its signal runs, so
    // exit_signal() treats it as a link exit...
    while (!idx.links.empty()) {
      if (budget == 0) return false;
      auto it = idx.links.begin();
      for (auto key : it->second) {
        auto p = procs_.find(key);
        if (p != procs_.end()) enqueue(Kind::kLinkExit, it->first, p->second.process->self(), reason);
      }
      budget -= std::min(budget, it->second.size());
      idx.links.erase(it);
    }
    // ...monitors that processes there held on ours go away silently...
    while (!idx.in_monitors.empty()) {
      if (budget == 0) return false;
      auto it = idx.in_monitors.begin();
      auto p = procs_.find(it->second);
      if (p != procs_.end() && p->second.monitored_by.erase(it->first) != 0) {
        --counters_.monitors;
      }
      idx.in_monitors.erase(it);
      --budget;
    }
    // ...and ours on processes there fire.
    while (!idx.out_monitors.empty()) {
      if (budget == 0) return false;
      const RefIds ids = std::move(idx.out_monitors.extract(idx.out_monitors.begin()).value());
      if (auto it = out_monitors_.find(ids); it != out_monitors_.end()) {
        const OutMonitor m = take_out_monitor(it);
        down(ids, m, reason);
      }
      --budget;
    }
    departed_.pop_front();
  }
  return true;
}

}  // namespace chat::node
