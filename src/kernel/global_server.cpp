// global_name_server: the connect algorithm (global.erl handle_call/3, handle_cast/2,
// handle_info/2, init_connect/6, resolved/5, handle_nodeup/2, handle_nodedown/3). The
// "prevent overlapping partitions" messages and the known-node views are in
// global_partitions.cpp, the tables in global_names.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "chat/term/show.hpp"
#include "chat/dist/random.hpp"
#include "chat/kernel/global.hpp"
#include "global_terms.hpp"

namespace chat::kernel {

using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

using global_terms::atom_name;
using global_terms::atoms;
using global_terms::int_of;
using global_terms::node_list;

GlobalServer::GlobalServer(std::shared_ptr<GlobalShared> shared) : shared_(std::move(shared)) {
  shared_->server = this;
}

GlobalServer::~GlobalServer() {
  if (shared_->server == this) shared_->server = nullptr;
}

void GlobalServer::started() {
  trap_exit_ = true;
  node().monitor_nodes(self(), true);
  // A random extension of our creation tells our lost_connection messages apart from those of
  // an earlier incarnation of this node (global:init/1).
  uint64_t r = 0;
  dist::random_bytes(&r, sizeof r);
  creation_extension_ = static_cast<int64_t>((r & ((uint64_t{1} << 59U) - 1)) & ~uint64_t{0xffffffff});
  std::vector<std::string> known;  // nodes already up count as connected, not known (init/1)
  locker_ = node().spawn(std::make_unique<GlobalLocker>(shared_, known));
  link(locker_);
  registrar_ = node().spawn(std::make_unique<GlobalRegistrar>(shared_));
  link(registrar_);
}

std::optional<Term> GlobalServer::my_tag(const std::string& n) const {
  auto it = sessions_.find(n);
  return it == sessions_.end() ? std::nullopt : it->second.my_tag;
}

void GlobalServer::to_locker(Term msg) { send(locker_, std::move(msg)); }

void GlobalServer::cast_to(const std::string& n, Term msg) {
  send_named(kGlobalName, n, tuple({atom("$gen_cast"), std::move(msg)}));
}

void GlobalServer::receive(Term&& msg) {
  spdlog::trace("global_name_server: {}", term::show(msg));
  if (auto call = parse_gen_call(msg)) {
    handle_call(*call);
  } else if (const auto* cast = parse_gen_cast(msg)) {
    handle_cast(*cast);
  } else {
    handle_info(msg);
  }
}

// --- handle_call ------------------------------------------------------------------------------

void GlobalServer::handle_call(const GenCall& call) {
  const Term& req = call.request;
  const auto reply = [&](Term r) { gen_reply(node(), self(), call, std::move(r)); };
  if (const auto* r = req.tuple(4); r != nullptr && (*r)[0].is_atom("register")) {
    const auto* pid = (*r)[2].get<Pid>();
    if (pid == nullptr) return;
    ins_name((*r)[1], *pid, (*r)[3], call.from, term::nil());
    reply(atom("yes"));
  } else if (const auto* r = req.tuple(2); r != nullptr && (*r)[0].is_atom("unregister")) {
    delete_global_name((*r)[1]);
    reply(atom("ok"));
  } else if (const auto* r = req.tuple(6); r != nullptr && (*r)[0].is_atom("register_ext")) {
    const auto* pid = (*r)[2].get<Pid>();
    const auto* reg_node = atom_name((*r)[4]);
    if (pid == nullptr || reg_node == nullptr) return;
    ins_name_ext((*r)[1], *pid, (*r)[3], *reg_node, call.from, term::nil());
    reply(atom("yes"));
  } else if (const auto* r = req.tuple(2); r != nullptr && (*r)[0].is_atom("set_lock")) {
    reply(atom(handle_set_lock((*r)[1], call.from) ? "true" : "false"));
  } else if (const auto* r = req.tuple(2); r != nullptr && (*r)[0].is_atom("del_lock")) {
    handle_del_lock((*r)[1], call.from);
    reply(atom("true"));
  } else if (req.is_atom("get_known")) {
    reply(known_list(0));
  } else if (req.is_atom("get_synced")) {
    reply(atoms(synced_));
  } else if (const auto* r = req.tuple(2); r != nullptr && (*r)[0].is_atom("sync")) {
    const GenCall c = call;
    SyncWaiter w{[this, c] { gen_reply(node(), self(), c, atom("ok")); }, {}};
    for (const auto& n : node_list((*r)[1])) {
      if (n != node().name() && std::find(synced_.begin(), synced_.end(), n) == synced_.end()) w.nodes.insert(n);
    }
    if (w.nodes.empty()) {
      w.done();
    } else {
      syncers_.push_back(std::move(w));
    }
  } else if (req.is_atom("get_protocol_version")) {
    reply(Term{kGlobalVsn});
  } else if (req.is_atom("get_names_ext")) {
    reply(names_ext_list());
  } else {
    node().peer_warn("global_name_server: unexpected call {}", term::show(req));
  }
}

// --- handle_cast ------------------------------------------------------------------------------

void GlobalServer::handle_cast(const Term& msg) {
  const auto* t = msg.get<term::Tuple>();
  const auto* tag = t != nullptr && !t->items.empty() ? atom_name(t->items[0]) : nullptr;
  if (tag == nullptr) {
    node().peer_warn("global_name_server: unexpected cast {}", term::show(msg));
    return;
  }
  const auto& c = t->items;
  const auto n = c.size();
  const std::string* node_arg = n >= 2 ? atom_name(c[1]) : nullptr;
  // Messages of a sync session carry our tag; a stale one cancels that session (cancel_locker).
  const auto session_ok = [&](const std::string& nd, const Term& their_tag) {
    auto mine = my_tag(nd);
    if (mine && *mine == their_tag) return true;
    cancel_locker(nd, their_tag);
    return false;
  };
  if (*tag == "init_connect" && n == 4 && atom_name(c[2]) != nullptr) {
    // {init_connect, {Vsn, Tag} | {Vsn, Tag, …}, Node, InitMsg}: newer versions answer older ones.
    const std::string& from = *atom_name(c[2]);
    const auto* v = c[1].get<term::Tuple>();
    if (v == nullptr || v->items.size() < 2 || !int_of(v->items[0])) {
      node().peer_log(spdlog::level::info, "global: illegal protocol version {} from {}", term::show(c[1]), from);
      return;
    }
    const int64_t his_vsn = *int_of(v->items[0]);
    const int64_t vsn = (v->items.size() > 2 || his_vsn > kGlobalVsn) ? kGlobalVsn : his_vsn;
    init_connect(vsn, from, c[3], v->items[1], his_vsn);
  } else if (*tag == "lock_is_set" && n == 4 && node_arg != nullptr) {
    if (session_ok(*node_arg, c[2])) lock_is_set(*node_arg, c[3]);
  } else if (*tag == "exchange" && n == 5 && node_arg != nullptr) {
    if (session_ok(*node_arg, c[4])) exchange(*node_arg, c[2]);
  } else if (*tag == "exchange_ops" && n == 5 && node_arg != nullptr) {
    // From our resolver: {exchange_ops, Node, MyTag, Ops, Resolved}.
    const std::string nd = *node_arg;
    if (!session_ok(nd, c[2])) return;
    auto& s = session(nd);
    cast_to(nd, tuple({atom("resolved"), atom(node().name()), c[4], known_list(node_vsn(nd)), atom("unused"),
                       names_ext_list(), s.his_tag.value_or(atom("undefined"))}));
    s.ops = c[3];
    if (s.resolved) {
      const auto r = std::move(*s.resolved);
      s.resolved.reset();
      resolved(nd, r[2], r[0], r[1]);
    }
  } else if (*tag == "resolved" && n == 7 && node_arg != nullptr) {
    // {resolved, Node, HisResolved, HisKnown, _Unused, Names_ext, MyTag}
    const std::string nd = *node_arg;
    if (!session_ok(nd, c[6])) return;
    auto& s = session(nd);
    if (s.ops) {
      resolved(nd, c[2], c[3], c[5]);
    } else if (!s.resolved) {
      s.resolved = std::vector<Term>{c[3], c[5], c[2]};
    }
  } else if (*tag == "new_nodes" && n == 6 && node_arg != nullptr) {
    new_nodes(c[2], *node_arg, c[3], c[4], c[5]);
  } else if (*tag == "in_sync" && n == 3 && node_arg != nullptr) {
    // {in_sync, Node, IsKnown}: a node of the other partition is in sync with us.
    const std::string nd = *node_arg;
    synced_with(nd);
    pending_.erase(nd);
    cancel_locker(nd, my_tag(nd).value_or(atom("undefined")));
    sessions_.erase(nd);
  } else if (*tag == "lock_set" && (n == 5 || n == 4)) {
    // {lock_set, Pid, Set, HisKnown[, MyTag]}: from the other node's locker, for ours.
    const auto* pid = c[1].get<Pid>();
    if (pid == nullptr) return;
    if (n == 5) {
      auto mine = my_tag(pid->node);
      if (!mine || *mine != c[4]) return;
    }
    to_locker(msg);
  } else if (*tag == "async_del_name" || *tag == "async_del_lock") {
    // From nodes older than R14A; the DOWN messages do the work.
  } else {
    node().peer_warn("global_name_server: unexpected cast {}", term::show(msg));
  }
}

// --- handle_info ------------------------------------------------------------------------------

void GlobalServer::handle_info(const Term& msg) {
  const auto* t = msg.get<term::Tuple>();
  const auto* tag = t != nullptr && !t->items.empty() ? atom_name(t->items[0]) : nullptr;
  if (tag == nullptr) {
    node().peer_warn("global_name_server: unexpected message {}", term::show(msg));
    return;
  }
  const auto& c = t->items;
  const auto n = c.size();
  const std::string* node_arg = n >= 2 ? atom_name(c[1]) : nullptr;
  if (*tag == "nodeup" && n == 2 && node_arg != nullptr) {
    if (connect_all_ && *node_arg != node().name()) handle_nodeup(*node_arg);
  } else if ((*tag == "nodedown" || *tag == "extra_nodedown") && n == 2 && node_arg != nullptr) {
    const std::string nd = *node_arg;
    for (auto& w : syncers_) w.nodes.erase(nd);
    synced_with("");  // completes the syncs that waited only for that node
    handle_nodedown(nd, Down::kDisconnected);
  } else if (*tag == "lost_connection" && n == 5) {
    lost_connection(msg);
  } else if (*tag == "remove_connection" && n == 2 && node_arg != nullptr) {
    const std::string nd = *node_arg;
    if (!potentially_known(nd)) return;
    node().disconnect(nd);
    handle_nodedown(nd, Down::kRemoveConnection);
    node().peer_warn("'global' at node {} disconnected node {} in order to prevent overlapping partitions",
                     node().name(), nd);
  } else if (*tag == "cancel_connect" && n == 3 && node_arg != nullptr) {
    // The other side cancelled an ongoing connect.
    const std::string nd = *node_arg;
    auto mine = my_tag(nd);
    if (!mine || *mine != c[2]) return;
    cancel_locker(nd, mine);
    sessions_.erase(nd);
    pending_.erase(nd);
    restart_connect(nd, mine);
  } else if (*tag == "init_connect_ack" && n == 4 && node_arg != nullptr) {
    // {init_connect_ack, Node, HisMyTag, HisHisTag}: both sides see the same session?
    const std::string nd = *node_arg;
    auto it = sessions_.find(nd);
    const bool same = it != sessions_.end() && it->second.my_tag && *it->second.my_tag == c[2] &&
                      it->second.his_tag && *it->second.his_tag == c[3];
    if (same) return;
    const auto mine = my_tag(nd);
    send_cancel_connect_message(nd, c[3]);
    restart_connect(nd, mine);
  } else if (*tag == "DOWN" && n == 5) {
    if (const auto* ref = c[1].get<term::Ref>()) down(*ref);
  } else if (*tag == "EXIT" && n == 3) {
    // The locker and the registrar are linked to us; without them global cannot work.
    const auto* pid = c[1].get<Pid>();
    if (pid != nullptr && (*pid == locker_ || *pid == registrar_)) exit(tuple({atom("satellite_died"), c[2]}));
  } else if (*tag == "prepare_shutdown" && n == 3) {
    connect_all_ = false;
    prevent_overlapping_partitions_ = false;
    if (const auto* from = c[1].get<Pid>()) send(*from, tuple({c[2], atom("ok")}));
  } else if (*tag == "whereis" && n == 3) {
    // {whereis, Name, From} (do_whereis/2)
    if (const auto* from = c[2].tuple(2); from != nullptr && (*from)[0].get<Pid>()) {
      const auto pid = whereis(c[1]);
      node().reply(self(), *(*from)[0].get<Pid>(), (*from)[1], pid ? Term{*pid} : atom("undefined"));
    }
  } else {
    node().peer_warn("global_name_server: unexpected message {}", term::show(msg));
  }
}

// --- connect algorithm ------------------------------------------------------------------------

void GlobalServer::handle_nodeup(const std::string& nd) {
  if (known_.contains(nd) || resolvers_.contains(nd)) return;  // already known or in progress
  auto& s = session(nd);
  if (s.pre_connect) {
    // An init_connect came before the nodeup: handle it now, after this one.
    auto pre = std::move(*s.pre_connect);
    s.pre_connect.reset();
    send(self(), tuple({atom("$gen_cast"),
                        tuple({atom("init_connect"), tuple({pre[0], pre[2]}), atom(nd), pre[1]})}));
  }
  const Term tag{next_tag_++};
  s.my_tag = tag;
  const Term init_msg = tuple({atom("locker"), atom("no_longer_a_pid"), known_map(), locker_});
  cast_to(nd, tuple({atom("init_connect"), tuple({Term{kGlobalVsn}, tag}), atom(node().name()), init_msg}));
  const Pid resolver = node().spawn(std::make_unique<GlobalResolver>(shared_, nd, tag));
  resolvers_[nd] = Resolver{tag, resolver};
}

void GlobalServer::init_connect(int64_t vsn, const std::string& nd, const Term& init_msg, const Term& his_tag,
                                int64_t his_vsn) {
  if (pending_.contains(nd)) {
    // A second connection attempt while one is going on: cancel both and start over.
    if (his_vsn < kGlobalVerifyVsn) {
      node().disconnect(nd);
      node().peer_log(spdlog::level::err,
                      "'global' at node {} got an out of sync connection attempt from old version {} node {}. "
                      "Disconnecting from it.",
                      node().name(), his_vsn, nd);
      return;
    }
    send_cancel_connect_message(nd, his_tag);
    restart_connect(nd, my_tag(nd));
    return;
  }
  auto& s = session(nd);
  s.prot_vsn = vsn;
  s.his_tag = his_tag;
  auto r = resolvers_.find(nd);
  if (r == resolvers_.end()) {
    s.pre_connect = std::vector<Term>{Term{vsn}, init_msg, his_tag};
    return;
  }
  // InitMsg = {locker, _NoLongerAPid, _HisKnown, HisTheLocker}
  const auto* im = init_msg.tuple(4);
  const Pid* his_locker = im != nullptr && (*im)[0].is_atom("locker") ? (*im)[3].get<Pid>() : nullptr;
  if (his_locker == nullptr) {
    node().peer_warn("global: malformed init_connect from {}: {}", nd, term::show(init_msg));
    return;
  }
  const Term mine = r->second.tag;
  to_locker(tuple({atom("his_the_locker"), *his_locker, tuple({Term{vsn}, term::nil()}), his_tag, mine}));
  if (his_vsn >= kGlobalVerifyVsn) {
    volatile_send(nd, tuple({atom("init_connect_ack"), atom(node().name()), his_tag, mine}));
  }
  pending_[nd] = his_vsn;
}

void GlobalServer::restart_connect(const std::string& nd, const std::optional<Term>& tag) {
  cancel_locker(nd, tag.value_or(atom("undefined")));
  sessions_.erase(nd);
  pending_.erase(nd);
  // OTP 27+: the names and locks of that node's processes are exchanged again.
  std::vector<term::RefIds> refs;
  for (const auto& [ids, key] : name_refs_) {
    auto it = names_.find(key);
    if (it != names_.end() && it->second.pid.node == nd) refs.push_back(ids);
  }
  for (const auto& ids : refs) down(term::Ref{node().name(), node().creation(), ids});
  if (tag && tag->get<int64_t>() != nullptr) handle_nodeup(nd);  // the node is up for us: start again
}

void GlobalServer::lock_is_set(const std::string& nd, const Term& lock_id) {
  auto& s = session(nd);
  cast_to(nd, tuple({atom("exchange"), atom(node().name()), names_list(), term::nil(),
                     s.his_tag.value_or(atom("undefined"))}));
  s.lock_id = lock_id;
  if (s.exchange_names) {
    // Both have the lock: go on with the exchange that came first.
    Term names = std::move(*s.exchange_names);
    s.exchange_names.reset();
    s.lock_set = true;
    exchange(nd, std::move(names));
  } else {
    s.lock_set = true;
  }
}

void GlobalServer::exchange(const std::string& nd, Term names) {
  auto& s = session(nd);
  const bool lock_was_set = s.lock_set;
  s.lock_set = false;
  s.exchange_names.reset();
  if (!lock_was_set) {
    s.exchange_names = std::move(names);
    return;
  }
  auto r = resolvers_.find(nd);
  if (r != resolvers_.end()) send(r->second.pid, tuple({atom("resolve"), std::move(names), atom(nd)}));
}

void GlobalServer::resolved(const std::string& nd, const Term& his_resolved, const Term& his_known,
                            const Term& names_ext) {
  auto& s = session(nd);
  // Ops = our resolver's ops ++ HisResolved
  std::vector<Term> ops;
  if (const auto* l = s.ops ? s.ops->get<term::List>() : nullptr) ops = l->items;
  s.ops.reset();
  if (const auto* l = his_resolved.get<term::List>()) ops.insert(ops.end(), l->items.begin(), l->items.end());
  const Term ops_term = term::list(ops);
  const auto known_before = known_;
  // NewNodes = [Node | HisKnown] with versions (make_node_vsn_list/2).
  std::vector<Term> new_nodes_list{tuple({atom(nd), Term{node_vsn(nd)}})};
  if (const auto* l = his_known.get<term::List>()) {
    for (const auto& k : l->items) {
      if (const auto* a = atom_name(k)) {
        new_nodes_list.push_back(tuple({k, Term{node_vsn(*a)}}));
      } else if (const auto* kt = k.tuple(2); kt != nullptr && atom_name((*kt)[0]) != nullptr) {
        const auto v = int_of((*kt)[1]);
        new_nodes_list.push_back(v && *v != 0 ? k : tuple({(*kt)[0], Term{node_vsn(*atom_name((*kt)[0]))}}));
      }
    }
  }
  const Term new_nodes_term = term::list(new_nodes_list);
  const auto his_known_nodes = node_list(his_known);
  sync_others(his_known_nodes);
  const Term extra = term::list({tuple({atom("vsn"), s.prot_vsn ? Term{*s.prot_vsn} : atom("undefined")}),
                                 tuple({atom("lock"), s.lock_id.value_or(atom("undefined"))})});
  do_ops(ops_term, node().name(), names_ext, extra);
  synced_with(nd);  // I am synced with Node, but not with HisKnown yet
  for (const auto& cancel : his_known_nodes) cancel_resolved_locker(cancel, 0);
  // The locker that holds the lock sends new_nodes before it deletes the lock, so that
  // {del_lock, …} reaches the other nodes after {new_nodes, …}.
  const Term msg = tuple({atom("new_nodes"), atom(node().name()), ops_term, names_ext, new_nodes_term, extra});
  std::vector<Term> plain_nodes;
  for (const auto& nn : new_nodes_list) plain_nodes.push_back((*nn.tuple(2))[0]);
  const Term old_msg =
      tuple({atom("new_nodes"), atom(node().name()), ops_term, names_ext, term::list(plain_nodes), extra});
  const int64_t fun = shared_->next_fun++;
  shared_->funs[fun] = [this, known_before, msg, old_msg] {
    for (const auto& [k, v] : known_before) cast_to(k, v >= kGlobalPopVsn ? msg : old_msg);
  };
  cancel_resolved_locker(nd, fun);
  const auto added = add_to_known(new_nodes_term);
  to_locker(tuple({atom("add_to_known"), atoms(added)}));
}

void GlobalServer::cancel_resolved_locker(const std::string& nd, int64_t fun) {
  const auto tag = my_tag(nd);
  // {pending, Node} goes first, so no cancel_connect is sent to a node we are done with.
  pending_.erase(nd);
  cancel_locker(nd, tag.value_or(atom("undefined")), fun);
  sessions_.erase(nd);
}

void GlobalServer::cancel_locker(const std::string& nd, const std::optional<Term>& tag, int64_t fun) {
  const Term t = tag.value_or(atom("undefined"));
  to_locker(tuple({atom("cancel"), atom(nd), t, fun != 0 ? Term{tuple({atom("fun"), Term{fun}})} : atom("no_fun")}));
  send_cancel_connect(nd, t);
  auto r = resolvers_.find(nd);
  if (r != resolvers_.end() && r->second.tag == t) {
    node().exit_signal(self(), r->second.pid, atom("kill"));
    resolvers_.erase(r);
  }
}

void GlobalServer::send_cancel_connect(const std::string& nd, const std::optional<Term>& my) {
  auto p = pending_.find(nd);
  if (p == pending_.end() || p->second < kGlobalVerifyVsn) return;
  auto it = sessions_.find(nd);
  if (it == sessions_.end() || !it->second.my_tag || !my || *it->second.my_tag != *my || !it->second.his_tag) return;
  send_cancel_connect_message(nd, *it->second.his_tag);
}

void GlobalServer::send_cancel_connect_message(const std::string& nd, const Term& his_tag) {
  volatile_send(nd, tuple({atom("cancel_connect"), atom(node().name()), his_tag}));
}

void GlobalServer::new_nodes(const Term& ops, const std::string& conn_node, const Term& names_ext, const Term& nodes,
                             const Term& extra) {
  // We may hear of a node here before its in_sync: add_to_known/2 never duplicates.
  const auto added = add_to_known(nodes);
  sync_others(added);
  do_ops(ops, conn_node, names_ext, extra);
  to_locker(tuple({atom("add_to_known"), atoms(added)}));
}

std::vector<std::string> GlobalServer::add_to_known(const Term& nodes) {
  std::vector<std::string> added;
  const auto* l = nodes.get<term::List>();
  if (l == nullptr) return added;
  for (const auto& item : l->items) {
    std::string nd;
    std::optional<int64_t> vsn;
    if (const auto* a = atom_name(item)) {
      nd = *a;
    } else if (const auto* t = item.tuple(2); t != nullptr && atom_name((*t)[0]) != nullptr) {
      nd = *atom_name((*t)[0]);
      vsn = int_of((*t)[1]);
    } else {
      continue;
    }
    if (nd == node().name()) continue;
    auto it = known_.find(nd);
    if (it == known_.end()) {
      added.insert(added.begin(), nd);
      known_[nd] = vsn.value_or(0);
    } else if (vsn && it->second < 0) {
      it->second = *vsn;
    }
  }
  return added;
}

void GlobalServer::sync_others(const std::vector<std::string>& nodes) {
  for (const auto& nd : nodes) node().spawn(std::make_unique<GlobalSyncOther>(nd));
}

void GlobalServer::synced_with(const std::string& nd) {
  if (!nd.empty()) ++shared_->stats.syncs;
  if (!nd.empty() && std::find(synced_.begin(), synced_.end(), nd) == synced_.end()) synced_.push_back(nd);
  std::vector<std::function<void()>> done;
  for (auto it = syncers_.begin(); it != syncers_.end();) {
    if (!nd.empty()) it->nodes.erase(nd);
    if (it->nodes.empty()) {
      done.push_back(std::move(it->done));
      it = syncers_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& d : done) d();
}

void GlobalServer::handle_nodedown(const std::string& nd, Down what) {
  // The DOWN messages of monitors have removed that node's locks and names.
  cancel_locker(nd, my_tag(nd).value_or(atom("undefined")));
  to_locker(tuple({atom("remove_from_known"), atom(nd)}));
  sessions_.erase(nd);
  switch (what) {
    case Down::kRemoveConnection: removing_.insert(nd); break;
    case Down::kIgnore: removing_.erase(nd); break;
    case Down::kDisconnected:
      if (removing_.erase(nd) == 0) inform_connection_loss(nd);
      break;
  }
  pending_.erase(nd);
  known_.erase(nd);
  std::erase(synced_, nd);
}

}  // namespace chat::kernel
