// The locker (global.erl: init_the_locker_fun/1, loop_the_locker/1, the_locker_message/2,
// select_node/1, lock_nodes_safely/3, lock_is_set/5, wait_cancel_lock/6, send_lock_set/5) and
// the lock calls it shares with the registrar (set_lock_on_nodes/2, check_replies/3,
// del_lock/2, delete_global_lock/2, random_sleep/1).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "chat/term/show.hpp"
#include "chat/dist/random.hpp"
#include "chat/kernel/global.hpp"
#include "global_terms.hpp"
#include "chat/node/node.hpp"

namespace chat::kernel {

using term::atom;
using term::Pid;
using term::Term;
using term::tuple;
using global_terms::atoms;

namespace {

uint32_t random_below(uint32_t n) {
  uint32_t r = 0;
  dist::random_bytes(&r, sizeof r);
  return n == 0 ? 0 : r % n;
}

std::vector<std::string> minus(std::vector<std::string> a, const std::vector<std::string>& b) {
  std::erase_if(a, [&](const std::string& x) { return std::find(b.begin(), b.end(), x) != b.end(); });
  return a;
}

std::string the_boss(std::vector<std::string> nodes) { return *std::max_element(nodes.begin(), nodes.end()); }

// is_node_local/1: the node runs on this host (its requests are served first).
bool on_this_host(const std::string& node) {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) return false;
  const auto at = node.find('@');
  return at != std::string::npos && node.substr(at + 1) == host;
}

}  // namespace

// --- lock calls -------------------------------------------------------------------------------

bool GlobalClient::can_set_lock(const Term& id) const {
  return shared_->server != nullptr && shared_->server->can_set_lock(id);
}

Co<bool> GlobalClient::set_lock_on_nodes(Term id, std::vector<std::string> nodes) {
  if (nodes.empty()) co_return true;
  // Probe the lock on this node first: no point asking the others if it is taken here.
  const std::string& me = node().name();
  if (nodes.size() > 1 && std::find(nodes.begin(), nodes.end(), me) != nodes.end() && !can_set_lock(id)) {
    co_return false;
  }
  Term req = tuple({atom("set_lock"), id});
  Co<MultiResult> calls = multi_call(nodes, kGlobalName, req);
  auto r = co_await calls;
  // check_replies/3: a node that said no makes the others undo theirs; nodes that did not
  // answer (gone) do not count.
  std::vector<std::string> yes;
  bool refused = false;
  for (const auto& answer : r.replies) {
    if (answer.second.is_atom("true")) {
      yes.push_back(answer.first);
    } else {
      refused = true;
    }
  }
  if (!refused) co_return true;
  if (r.replies.size() > 1 && !yes.empty()) {
    Co<> undo = del_lock(id, yes);
    co_await undo;
  }
  co_return false;
}

Co<> GlobalClient::del_lock(Term id, std::vector<std::string> nodes) {
  if (nodes.empty()) co_return;
  Term req = tuple({atom("del_lock"), std::move(id)});
  Co<MultiResult> calls = multi_call(nodes, kGlobalName, req);
  co_await calls;
}

Co<> GlobalClient::delete_global_lock(Term id, std::vector<std::string> nodes) {
  // The boss's lock goes last, to lower the chance that someone locks the boss and then fails
  // on the other nodes.
  if (nodes.empty()) co_return;
  const std::string boss = the_boss(nodes);
  std::vector<std::string> rest = nodes;
  std::erase(rest, boss);
  std::vector<std::string> only_boss(1, boss);
  Co<> others = del_lock(id, rest);
  co_await others;
  Co<> last = del_lock(id, only_boss);
  co_await last;
}

Co<> GlobalClient::random_sleep(uint32_t times) {
  // A quarter of a second the first time, doubling up to 8 seconds.
  const uint32_t tmax = times > 5 ? 8000 : ((1U << times) * 1000U) / 8U;
  Receive pause = sleep(1 + random_below(tmax));
  co_await pause;
}

// --- the locker -------------------------------------------------------------------------------

GlobalLocker::GlobalLocker(std::shared_ptr<GlobalShared> shared, std::vector<std::string> known)
    : GlobalClient(std::move(shared)) {
  add_known(known);
}

void GlobalLocker::add_known(const std::vector<std::string>& nodes) {
  known_.insert(known_.begin(), nodes.begin(), nodes.end());
}

void GlobalLocker::remove_known(const std::string& n) {
  auto it = std::find(known_.begin(), known_.end(), n);
  if (it != known_.end()) known_.erase(it);
}

void GlobalLocker::update_known() {
  const auto is_update = [](const Term& m) {
    const auto* t = m.get<term::Tuple>();
    return t != nullptr && t->items.size() == 2 &&
           (t->items[0].is_atom("add_to_known") || t->items[0].is_atom("remove_from_known"));
  };
  while (auto m = take(is_update)) {
    const auto& c = m->get<term::Tuple>()->items;
    if (c[0].is_atom("add_to_known")) {
      std::vector<std::string> nodes;
      if (const auto* l = c[1].get<term::List>()) {
        for (const auto& x : l->items) {
          if (const auto* a = x.get<term::Atom>()) nodes.push_back(a->name);
        }
      }
      add_known(nodes);
    } else if (const auto* a = c[1].get<term::Atom>()) {
      remove_known(a->name);
    }
  }
}

Term GlobalLocker::lock_id_with(const Pid& his_locker) const {
  // Both lockers use the same requester id, so the nodes both partitions share are locked by
  // both (locker_lock_id/2, version 5+).
  const Pid& a = self();
  const Pid& b = his_locker;
  // lists:sort/1 of two pids: Erlang orders pids by serial, number, node name, creation
  // (measured on OTP 25 with binary_to_term of crafted pids).
  const auto rank = [](const Pid& p) { return std::tie(p.serial, p.num, p.node, p.creation); };
  const bool a_first = rank(a) < rank(b);
  return tuple({atom("global"), term::list(a_first ? std::vector<Term>{a, b} : std::vector<Term>{b, a})});
}

std::optional<GlobalLocker::Him> GlobalLocker::find_node_tag(const std::string& n) const {
  for (const auto* list : {&local_, &remote_}) {
    for (const auto& h : *list) {
      if (h.node == n) return h;
    }
  }
  return std::nullopt;
}

void GlobalLocker::remove_node(const std::string& n, const Term& tag) {
  for (auto* list : {&local_, &remote_}) {
    auto it = std::find_if(list->begin(), list->end(), [&](const Him& h) { return h.node == n && h.my_tag == tag; });
    if (it != list->end()) list->erase(it);
  }
}

void GlobalLocker::call_fun(const Term& fun) {
  const auto* t = fun.tuple(2);
  const auto* id = t != nullptr && (*t)[0].is_atom("fun") ? (*t)[1].get<int64_t>() : nullptr;
  if (id == nullptr) return;
  auto it = shared_->funs.find(*id);
  if (it == shared_->funs.end()) return;
  auto f = std::move(it->second);
  shared_->funs.erase(it);
  if (shared_->server != nullptr) f();
}

void GlobalLocker::send_lock_set(bool is_set, const Pid& his_locker, int64_t vsn, const Term& his_tag) {
  Term msg = vsn < kGlobalVerifyVsn
                 ? tuple({atom("lock_set"), self(), atom(is_set ? "true" : "false"), atoms(known_)})
                 : tuple({atom("lock_set"), self(), atom(is_set ? "true" : "false"), atoms(known_), his_tag});
  if (vsn < 6) {
    send(his_locker, std::move(msg));
  } else {
    cast(kGlobalName, his_locker.node, std::move(msg));
  }
}

Co<> GlobalLocker::main() {
  for (;;) {
    if (auto m = take([](const Term&) { return true; })) {
      Co<> handle = the_locker_message(*m);
      co_await handle;
      continue;
    }
    uint64_t timeout = kInfinity;
    if (!local_.empty() || !remote_.empty()) {
      // Longer than zero, or another node of the partition would rarely get the lock after
      // this one failed once it had it.
      if (just_synced_) {
        timeout = 0;
      } else if (known_.empty()) {
        timeout = 200;
      } else {
        timeout = std::min<uint64_t>(1000 + 100 * known_.size(), 3000);
      }
    }
    just_synced_ = false;
    Receive next = receive_match([](const Term&) { return true; }, timeout);
    auto m = co_await next;
    if (m) {
      Co<> handle = the_locker_message(*m);
      co_await handle;
    } else if (shared_->server != nullptr && !shared_->server->is_global_lock_set()) {
      Co<> select = select_node();
      co_await select;
    }
  }
}

Co<> GlobalLocker::the_locker_message(Term msg) {
  spdlog::trace("global locker: {}", term::show(msg));
  const auto* t = msg.get<term::Tuple>();
  const auto* tag = t != nullptr && !t->items.empty() ? t->items[0].get<term::Atom>() : nullptr;
  const size_t n = t != nullptr ? t->items.size() : 0;
  if (tag != nullptr && tag->name == "his_the_locker" && n == 5) {
    // {his_the_locker, HisTheLocker, {HisVsn, _HisKnown}, HisTag, MyTag}
    const auto& c = t->items;
    const auto* his = c[1].get<Pid>();
    const auto* v = c[2].tuple(2);
    const auto* vsn = v != nullptr ? (*v)[0].get<int64_t>() : nullptr;
    if (his == nullptr || vsn == nullptr || *vsn <= 4) co_return;
    Him him{his->node, *his, *vsn, c[4], c[3]};
    (on_this_host(him.node) ? local_ : remote_).insert((on_this_host(him.node) ? local_ : remote_).begin(), him);
    co_return;
  }
  if (tag != nullptr && tag->name == "cancel" && n == 4) {
    // {cancel, Node, Tag, no_fun}. A cancel carrying a fun is only taken while locked.
    const auto& c = t->items;
    if (!c[3].is_atom("no_fun")) {
      if (const auto* f = c[3].tuple(2); f != nullptr) {
        if (const auto* id = (*f)[1].get<int64_t>()) shared_->funs.erase(*id);
      }
      spdlog::debug("global locker: cancel with a fun outside a lock: {}", term::show(msg));
      co_return;
    }
    // With the tag undefined we might be acting on an old nodedown for a new nodeup: no.
    if (c[2].is_atom("undefined")) co_return;
    if (const auto* a = c[1].get<term::Atom>()) remove_node(a->name, c[2]);
    co_return;
  }
  if (tag != nullptr && tag->name == "lock_set" && (n == 5 || n == 4)) {
    const auto& c = t->items;
    const auto* pid = c[1].get<Pid>();
    if (pid == nullptr || !c[2].is_atom("true")) co_return;  // spurious false
    const auto him = find_node_tag(pid->node);
    if (!him || (n == 5 && him->my_tag != c[4])) {
      send_lock_set(false, *pid, 5, Term{int64_t{0}});
      co_return;
    }
    // The other locker has the lock on its partition and on us: take ours and answer.
    const Term lock_id = lock_id_with(*pid);
    std::vector<std::string> no_extra;
    Co<bool> locking = lock_nodes_safely(lock_id, no_extra);
    const bool is_set = co_await locking;
    send_lock_set(is_set, *pid, him->vsn, him->his_tag);
    if (!is_set) {
      just_synced_ = false;
      co_return;
    }
    std::vector<std::string> known2{node().name()};
    known2.insert(known2.end(), known_.begin(), known_.end());
    cast(kGlobalName, node().name(), tuple({atom("lock_is_set"), atom(pid->node), him->my_tag, lock_id}));
    const std::string his_node = pid->node;
    const Term my_tag = him->my_tag;
    Co<> waiting = wait_cancel_lock(his_node, lock_id, my_tag, known2);
    co_await waiting;
    just_synced_ = true;
    remove_node(pid->node, him->my_tag);
    co_return;
  }
  if (tag != nullptr && tag->name == "add_to_known" && n == 2) {
    std::vector<std::string> nodes;
    if (const auto* l = t->items[1].get<term::List>()) {
      for (const auto& x : l->items) {
        if (const auto* a = x.get<term::Atom>()) nodes.push_back(a->name);
      }
    }
    add_known(nodes);
    co_return;
  }
  if (tag != nullptr && tag->name == "remove_from_known" && n == 2) {
    if (const auto* a = t->items[1].get<term::Atom>()) remove_known(a->name);
    co_return;
  }
  node().peer_warn("The global_name_server locker process received an unexpected message: {}", term::show(msg));
}

Co<> GlobalLocker::select_node() {
  // Requests from nodes on this host first; nodes already known need no lock.
  auto& list = local_.empty() ? remote_ : local_;
  std::erase_if(list, [this](const Him& h) { return std::find(known_.begin(), known_.end(), h.node) != known_.end(); });
  if (list.empty()) co_return;
  const Him him = list[random_below(static_cast<uint32_t>(list.size()))];
  spdlog::trace("global locker: locking with {}", him.node);
  const Term lock_id = lock_id_with(him.locker);
  // Locking his node with ours ([Node] as Extra) is what prevents a deadlock.
  std::vector<std::string> his_node(1, him.node);
  Co<bool> locking = lock_nodes_safely(lock_id, his_node);
  const bool is_set = co_await locking;
  if (!is_set) co_return;
  std::vector<std::string> known1{node().name(), him.node};
  known1.insert(known1.end(), known_.begin(), known_.end());
  send_lock_set(true, him.locker, him.vsn, him.his_tag);
  Co<> waiting = lock_is_set(him, known1, lock_id);
  co_await waiting;
}

Co<bool> GlobalLocker::lock_nodes_safely(Term lock_id, std::vector<std::string> extra) {
  // Locking node() could stop a node that has locked the boss already: only check it here.
  std::vector<std::string> with_me{node().name()};
  with_me.insert(with_me.end(), known_.begin(), known_.end());
  const std::vector<std::string> first{the_boss(with_me)};
  if (!(first[0] == node().name() || can_set_lock(lock_id))) co_return false;
  Co<bool> boss = set_lock_on_nodes(lock_id, first);
  const bool boss_locked = co_await boss;
  if (!boss_locked) co_return false;
  update_known();
  std::vector<std::string> second{node().name()};
  second.insert(second.end(), extra.begin(), extra.end());
  second = minus(second, first);
  Co<bool> ours = set_lock_on_nodes(lock_id, second);
  const bool second_locked = co_await ours;
  if (!second_locked) {
    Co<> undo = del_lock(lock_id, first);
    co_await undo;
    co_return false;
  }
  const std::vector<std::string> rest = minus(known_, first);
  Co<bool> partition = set_lock_on_nodes(lock_id, rest);
  const bool known_locked = co_await partition;
  if (!known_locked) {
    std::vector<std::string> so_far = first;
    so_far.insert(so_far.end(), second.begin(), second.end());
    Co<> undo = del_lock(lock_id, so_far);
    co_await undo;
    co_return false;
  }
  co_return true;
}

Co<> GlobalLocker::lock_is_set(Him him, std::vector<std::string> known1, Term lock_id) {
  const std::string n = him.node;
  for (;;) {
    // {lock_set, P, Set, _[, Tag]} from his node, or {cancel, Node, MyTag, Fun}.
    Receive answer = receive_match([&](const Term& x) {
      const auto* t = x.get<term::Tuple>();
      if (t == nullptr || t->items.empty()) return false;
      const auto& c = t->items;
      if (c[0].is_atom("lock_set") && (c.size() == 4 || c.size() == 5)) {
        const auto* p = c[1].get<Pid>();
        return p != nullptr && p->node == n;
      }
      return c[0].is_atom("cancel") && c.size() == 4 && c[1].is_atom(n) && c[2] == him.my_tag;
    });
    const auto m = co_await answer;
    const auto& c = m->get<term::Tuple>()->items;
    if (c[0].is_atom("cancel")) {
      call_fun(c[3]);
      Co<> unlock = delete_global_lock(lock_id, known1);
      co_await unlock;
      remove_node(n, him.my_tag);
      co_return;
    }
    const bool current = c.size() == 4 || c[4] == him.my_tag;
    if (!current) continue;  // an old session's answer
    if (!c[2].is_atom("true")) {
      Co<> unlock = delete_global_lock(lock_id, known1);
      co_await unlock;
      co_return;
    }
    cast(kGlobalName, node().name(), tuple({atom("lock_is_set"), atom(n), him.my_tag, lock_id}));
    Co<> waiting = wait_cancel_lock(n, lock_id, him.my_tag, known1);
    co_await waiting;
    just_synced_ = true;
    std::erase_if(local_, [&](const Him& h) { return h.node == n && h.my_tag == him.my_tag; });
    std::erase_if(remote_, [&](const Him& h) { return h.node == n && h.my_tag == him.my_tag; });
    co_return;
  }
}

Co<> GlobalLocker::wait_cancel_lock(std::string n, Term lock_id, Term my_tag, std::vector<std::string> known) {
  // Until the server says the connect is over; should the other node die, its nodedown
  // makes the server send the cancel.
  Receive cancel = receive_match([&](const Term& x) {
    const auto* t = x.tuple(4);
    return t != nullptr && (*t)[0].is_atom("cancel") && (*t)[1].is_atom(n) && (*t)[2] == my_tag;
  });
  const auto m = co_await cancel;
  call_fun((*m->tuple(4))[3]);
  Co<> unlock = delete_global_lock(lock_id, known);
  co_await unlock;
}

// --- the registrar ----------------------------------------------------------------------------

Co<std::vector<std::string>> GlobalRegistrar::set_lock_known(Term id) {
  for (uint32_t times = 0;; ++times) {
    if (shared_->server == nullptr) co_return std::vector<std::string>{};
    const auto known = shared_->server->known_nodes();
    std::vector<std::string> nodes{node().name()};
    nodes.insert(nodes.end(), known.begin(), known.end());
    std::vector<std::string> only_boss(1, the_boss(nodes));
    Co<bool> boss = set_lock_on_nodes(id, only_boss);
    const bool boss_locked = co_await boss;
    if (boss_locked) {
      Co<bool> everyone = set_lock_on_nodes(id, nodes);
      const bool all = co_await everyone;
      if (all && shared_->server != nullptr && minus(shared_->server->known_nodes(), known).empty()) co_return nodes;
      Co<> undo = del_lock(id, only_boss);
      co_await undo;
    }
    Co<> pause = random_sleep(times);
    co_await pause;
  }
}

Co<> GlobalRegistrar::main() {
  for (;;) {
    // {register, Name, Pid, Id} or {unregister, Name, Id} from this node's server.
    Receive request = receive_match([](const Term& x) {
      const auto* t = x.get<term::Tuple>();
      return t != nullptr && !t->items.empty() && t->items.back().get<int64_t>() != nullptr &&
             ((t->items.size() == 4 && t->items[0].is_atom("register")) ||
              (t->items.size() == 3 && t->items[0].is_atom("unregister")));
    });
    const auto m = co_await request;
    const auto& c = m->get<term::Tuple>()->items;
    const int64_t id = *c.back().get<int64_t>();
    const Term lock = tuple({atom("global"), self()});
    Co<std::vector<std::string>> locking = set_lock_known(lock);
    const auto nodes = co_await locking;
    bool ok = false;
    if (shared_->server != nullptr && !nodes.empty()) {
      const auto* server = shared_->server;
      Term req;
      if (c[0].is_atom("register")) {
        const Pid pid = *c[2].get<Pid>();
        // register_name/3: only a free name, and only for a pid without a name yet.
        bool has_name = false;
        for (const auto& [k, n] : server->names()) has_name = has_name || n.pid == pid;
        if (!server->whereis(c[1]) && !has_name) req = tuple({atom("register"), c[1], pid, random_exit_name_fun()});
      } else {
        req = tuple({atom("unregister"), c[1]});
      }
      if (!req.is_nil()) {
        Co<MultiResult> calls = multi_call(nodes, kGlobalName, req);
        co_await calls;
        ok = true;
      }
    }
    Co<> unlock = delete_global_lock(lock, nodes);
    co_await unlock;
    if (auto d = shared_->done.find(id); d != shared_->done.end()) {
      auto done = std::move(d->second);
      shared_->done.erase(d);
      done(ok);
    }
  }
}

// --- resolver and sync_other ----------------------------------------------------------------

Co<> GlobalResolver::main() {
  // {resolve, NameList, Node}; anything else is garbage.
  Receive resolve = receive_match([this](const Term& x) {
    const auto* t = x.tuple(3);
    return t != nullptr && (*t)[0].is_atom("resolve") && (*t)[2].is_atom(node_);
  });
  const auto m = co_await resolve;
  const Term names = (*m->tuple(3))[1];
  std::vector<Term> ops;
  std::vector<Term> res;
  const bool we_resolve = node().name() < node_;  // the smaller node resolves clashes
  if (const auto* l = names.get<term::List>()) {
    for (const auto& entry : l->items) {
      const auto* e = entry.tuple(3);
      const auto* pid = e != nullptr ? (*e)[1].get<Pid>() : nullptr;
      if (pid == nullptr || shared_->server == nullptr) continue;
      const Term& name = (*e)[0];
      const Term& method = (*e)[2];
      const auto& table = shared_->server->names();
      auto mine = table.find(term_key(name));
      if (mine == table.end()) {
        ops.insert(ops.begin(), tuple({atom("insert"), entry}));  // an entirely new name
        continue;
      }
      if (mine->second.pid == *pid || !we_resolve) continue;  // same, or the other node resolves
      const Pid pid2 = mine->second.pid;
      const Term method2 = mine->second.method;
      const Pid his_pid = *pid;
      Co<Term> resolving = resolve_it(method2, name, his_pid, pid2);
      const Term outcome = co_await resolving;
      if (outcome == Term{*pid}) {
        ops.insert(ops.begin(), tuple({atom("insert"), tuple({name, *pid, method})}));
      } else if (outcome == Term{pid2}) {
        res.insert(res.begin(), tuple({atom("insert"), tuple({name, pid2, method2})}));
      } else if (const auto* bad = outcome.tuple(2); bad != nullptr && (*bad)[0].is_atom("badrpc")) {
        node().peer_log(spdlog::level::info, "global: badrpc {} received when conflicting name {} was found",
                        term::show(outcome), term::show(name));
        ops.insert(ops.begin(), tuple({atom("insert"), tuple({name, *pid, method})}));
      } else {
        if (!outcome.is_atom("none")) {
          node().peer_log(spdlog::level::info, "global: Resolve method for conflicting name {} returned {}",
                          term::show(name), term::show(outcome));
        }
        const Term del = tuple({atom("delete"), name});
        ops.insert(ops.begin(), del);
        res.insert(res.begin(), del);
      }
    }
  }
  cast(kGlobalName, node().name(),
       tuple({atom("exchange_ops"), atom(node_), tag_, term::list(std::move(ops)), term::list(std::move(res))}));
}

Co<Term> GlobalResolver::resolve_it(const Term& method, const Term& name, const Pid& pid, const Pid& pid2) {
  // rpc:call(node(Pid2), global, resolve_it, [Method2, Name, Pid, Pid2])
  if (pid2.node == node().name()) co_return resolve_here(node(), self(), method, name, pid, pid2);
  const Term request = tuple({atom("call"), atom("global"), atom("resolve_it"),
                              term::list({method, name, pid, pid2}), self()});
  Term rex = tuple({atom("rex"), atom(pid2.node)});
  Co<CallResult> rpc = call(rex, request);
  const auto r = co_await rpc;
  co_return r.ok ? r.value : tuple({atom("badrpc"), r.value});
}

void GlobalSyncOther::started() {
  node().monitor_nodes(self(), true);
  monitor_node(node_);
  send_named(kGlobalName, node_, tuple({atom("$gen_cast"), tuple({atom("in_sync"), atom(node().name()), atom("true")})}));
  if (node().is_visible(node_)) {
    exit(atom("normal"));
    return;
  }
  // Not connected yet: the in_sync goes out once the connection is up; give up after twice
  // the connection setup time.
  after(15000, [this] { exit(atom("normal")); });
}

void GlobalSyncOther::receive(Term&& msg) {
  const auto* t = msg.tuple(2);
  if (t == nullptr || !(*t)[1].is_atom(node_)) return;
  if ((*t)[0].is_atom("nodeup")) {
    exit(atom("normal"));
  } else if ((*t)[0].is_atom("nodedown")) {
    node().peer_warn("'global' at {} failed to connect to {}", node().name(), node_);
    send_named(kGlobalName, node().name(), tuple({atom("extra_nodedown"), atom(node_)}));
    exit(atom("normal"));
  }
}

}  // namespace chat::kernel
