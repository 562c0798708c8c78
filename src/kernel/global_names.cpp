// global's tables: registered names (global_names, global_names_ext, global_pid_names) and
// locks (global_locks, global_pid_ids), with the monitors that clean them up (global.erl
// ins_name/6, insert_global_name/6, lock_still_set/3, delete_global_name2/2, do_ops/5,
// handle_set_lock/3, handle_del_lock/3, remove_lock/6, delete_lock/2, del_name/2).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "chat/term/show.hpp"
#include "chat/kernel/global.hpp"

namespace chat::kernel {

using term::atom;
using term::Pid;
using term::Ref;
using term::Term;
using term::tuple;

std::string term_key(const Term& t) { return term::encode(t); }

Term random_exit_name_fun() {
  // EXPORT_EXT (113): fun global:random_exit_name/3
  std::string bytes;
  bytes.push_back(static_cast<char>(113));
  term::encode_to(atom("global"), bytes);
  term::encode_to(atom("random_exit_name"), bytes);
  term::encode_to(Term{int64_t{3}}, bytes);
  return term::Raw{std::move(bytes)};
}

namespace {

// The resolve function named by `method`, when it is one of global's own exported funs.
std::string global_method(const Term& method) {
  const auto* raw = method.get<term::Raw>();
  if (raw == nullptr || raw->encoded.empty() || static_cast<uint8_t>(raw->encoded[0]) != 113) return {};
  size_t at = 1;
  auto mod = term::decode_at(raw->encoded, &at);
  auto fun = mod ? term::decode_at(raw->encoded, &at) : std::nullopt;
  auto arity = fun ? term::decode_at(raw->encoded, &at) : std::nullopt;
  if (!arity || !mod->is_atom("global") || *arity != Term{int64_t{3}} || fun->get<term::Atom>() == nullptr) return {};
  return fun->get<term::Atom>()->name;
}

const std::string* node_of(const Term& t) {
  const auto* a = t.get<term::Atom>();
  return a != nullptr ? &a->name : nullptr;
}

}  // namespace

Term resolve_here(node::Node& node, const Pid& self, const Term& method, const Term& name, const Pid& pid,
                  const Pid& pid2) {
  // minmax/2: the pid on the smaller node is kept.
  const bool first_min = pid.node < pid2.node;
  const Pid& min = first_min ? pid : pid2;
  const Pid& max = first_min ? pid2 : pid;
  const std::string m = global_method(method);
  if (m == "random_exit_name") {
    node.peer_log(spdlog::level::info, "global: Name conflict terminating {}", term::show(tuple({name, max})));
    node.exit_signal(self, max, atom("kill"));
    return min;
  }
  if (m == "random_notify_name") {
    node.send(self, max, tuple({atom("global_name_conflict"), name}));
    return min;
  }
  if (m == "notify_all_name") {
    node.send(self, pid, tuple({atom("global_name_conflict"), name, pid2}));
    node.send(self, pid2, tuple({atom("global_name_conflict"), name, pid}));
    return atom("none");
  }
  // resolve_it/4 catches what the method raises: {'EXIT', Reason}; the name is then dropped.
  return tuple({atom("EXIT"), tuple({atom("undef"), term::nil()})});
}

std::optional<Pid> GlobalServer::whereis(const Term& name) const {
  auto it = names_.find(term_key(name));
  if (it == names_.end()) return std::nullopt;
  const Pid& pid = it->second.pid;
  if (pid.node == node().name() && !node().alive(pid)) return std::nullopt;
  return pid;
}

std::vector<Term> GlobalServer::registered_names() const {
  std::vector<Term> out;
  out.reserve(names_.size());
  for (const auto& [k, n] : names_) out.push_back(n.name);
  return out;
}

Term GlobalServer::names_list() const {
  std::vector<Term> out;
  for (const auto& [k, n] : names_) out.push_back(tuple({n.name, n.pid, n.method}));
  return term::list(std::move(out));
}

Term GlobalServer::names_ext_list() const {
  std::vector<Term> out;
  for (const auto& [k, e] : names_ext_) {
    auto n = names_.find(k);
    if (n != names_.end()) out.push_back(tuple({n->second.name, e.first, atom(e.second)}));
  }
  return term::list(std::move(out));
}

void GlobalServer::ins_name(const Term& name, const Pid& pid, const Term& method, const Term& from,
                            const Term& extra) {
  delete_global_name(name, true);
  insert_global_name(name, pid, method, from, extra);
}

void GlobalServer::ins_name_ext(const Term& name, const Pid& pid, const Term& method, const std::string& reg_node,
                                const Term& from, const Term& extra) {
  delete_global_name(name, true);
  if (reg_node == node().name()) link(pid);  // dolink_ext/2
  names_ext_[term_key(name)] = {pid, reg_node};
  insert_global_name(name, pid, method, from, extra);
}

void GlobalServer::insert_global_name(const Term& name, const Pid& pid, const Term& method, const Term& from,
                                      const Term& extra) {
  const std::string key = term_key(name);
  const Ref mref = monitor(pid);
  names_[key] = GlobalName{name, pid, method, mref};
  pid_names_[pid].insert(key);
  name_refs_[mref.ids] = key;
  // The node that took the lock went down and up again, and this registration arrived late:
  // the lock is gone, and so must the name be.
  if (!lock_still_set(from, extra)) delete_global_name(name);
}

bool GlobalServer::lock_still_set(const Term& from, const Term& extra) const {
  auto it = locks_.find(term_key(atom("global")));
  if (it == locks_.end()) return !global_lock_down_;
  if (const auto* pid = from.get<Pid>()) {
    return std::any_of(it->second.holders.begin(), it->second.holders.end(),
                       [&](const auto& h) { return h.first == *pid; });
  }
  // {lock, {global, LockReqId}} in ExtraInfo
  if (const auto* l = extra.get<term::List>()) {
    for (const auto& e : l->items) {
      const auto* t = e.tuple(2);
      if (t == nullptr || !(*t)[0].is_atom("lock")) continue;
      const auto* id = (*t)[1].tuple(2);
      return id != nullptr && (*id)[1] == it->second.requester;
    }
  }
  return false;
}

void GlobalServer::delete_global_name(const Term& name, bool keep_entry) {
  const std::string key = term_key(name);
  auto it = names_.find(key);
  if (it == names_.end()) return;
  const GlobalName n = it->second;
  if (!keep_entry) names_.erase(it);
  demonitor(n.mref);
  name_refs_.erase(n.mref.ids);
  if (auto p = pid_names_.find(n.pid); p != pid_names_.end()) {
    p->second.erase(key);
    if (p->second.empty()) pid_names_.erase(p);
  }
  if (auto ext = names_ext_.find(key); ext != names_ext_.end()) {
    // dounlink_ext/2: unless the pid still holds another name or lock
    if (ext->second.second == node().name() && !pid_names_.contains(n.pid)) unlink(n.pid);
    names_ext_.erase(ext);
  }
}

void GlobalServer::do_ops(const Term& ops, const std::string& conn_node, const Term& names_ext, const Term& extra) {
  const auto* ol = ops.get<term::List>();
  if (ol == nullptr) return;
  const auto* el = names_ext.get<term::List>();
  std::set<std::string> ext_names;
  // Inserts of names registered by external nodes first (they keep their RegNode)...
  for (const auto& op : ol->items) {
    const auto* ins = op.tuple(2);
    const auto* nm = ins != nullptr && (*ins)[0].is_atom("insert") ? (*ins)[1].tuple(3) : nullptr;
    if (nm == nullptr || el == nullptr) continue;
    for (const auto& x : el->items) {
      const auto* xt = x.tuple(3);
      if (xt == nullptr || (*xt)[0] != (*nm)[0] || (*xt)[1] != (*nm)[1]) continue;
      const auto* pid = (*nm)[1].get<Pid>();
      const auto* reg = node_of((*xt)[2]);
      if (pid == nullptr || reg == nullptr) continue;
      ins_name_ext((*nm)[0], *pid, (*nm)[2], *reg, atom(conn_node), extra);
      ext_names.insert(term_key((*nm)[0]));
    }
  }
  // ...then the others, then the deletes.
  for (const auto& op : ol->items) {
    const auto* ins = op.tuple(2);
    const auto* nm = ins != nullptr && (*ins)[0].is_atom("insert") ? (*ins)[1].tuple(3) : nullptr;
    if (nm == nullptr || ext_names.contains(term_key((*nm)[0]))) continue;
    if (const auto* pid = (*nm)[1].get<Pid>()) ins_name((*nm)[0], *pid, (*nm)[2], atom(conn_node), extra);
  }
  for (const auto& op : ol->items) {
    const auto* del = op.tuple(2);
    if (del != nullptr && (*del)[0].is_atom("delete")) delete_global_name((*del)[1]);
  }
}

// --- locks --------------------------------------------------------------------------------------

bool GlobalServer::can_set_lock(const Term& id) const {
  // {ResourceId, LockRequesterId}: free, or held for the same requester.
  const auto* t = id.tuple(2);
  if (t == nullptr) return false;
  auto it = locks_.find(term_key((*t)[0]));
  return it == locks_.end() || it->second.requester == (*t)[1];
}

bool GlobalServer::is_global_lock_set() const { return locks_.contains(term_key(atom("global"))); }

bool GlobalServer::handle_set_lock(const Term& id, const Pid& pid) {
  if (!can_set_lock(id)) return false;
  const auto& t = *id.tuple(2);
  const std::string key = term_key(t[0]);
  auto it = locks_.find(key);
  if (it == locks_.end()) it = locks_.emplace(key, Lock{t[0], t[1], {}}).first;
  auto& holders = it->second.holders;
  if (std::any_of(holders.begin(), holders.end(), [&](const auto& h) { return h.first == pid; })) return true;
  const Ref mref = monitor(pid);
  holders.insert(holders.begin(), {pid, mref});
  lock_refs_[mref.ids].insert(key);
  return true;
}

void GlobalServer::handle_del_lock(const Term& id, const Pid& pid) {
  const auto* t = id.tuple(2);
  if (t == nullptr) return;
  const std::string key = term_key((*t)[0]);
  auto it = locks_.find(key);
  if (it == locks_.end() || it->second.requester != (*t)[1]) return;
  remove_lock(key, pid, false);
}

void GlobalServer::remove_lock(const std::string& key, const Pid& pid, bool is_down) {
  auto it = locks_.find(key);
  if (it == locks_.end()) return;
  auto& holders = it->second.holders;
  auto h = std::find_if(holders.begin(), holders.end(), [&](const auto& x) { return x.first == pid; });
  if (h == holders.end()) return;
  demonitor(h->second);
  if (auto r = lock_refs_.find(h->second.ids); r != lock_refs_.end()) {
    r->second.erase(key);
    if (r->second.empty()) lock_refs_.erase(r);
  }
  holders.erase(h);
  if (!holders.empty()) return;
  // The last holder: the lock goes. global_lock_down remembers whether global's own lock went
  // with a process that died (lock_still_set/3).
  if (it->second.resource.is_atom("global")) global_lock_down_ = is_down;
  locks_.erase(it);
}

void GlobalServer::down(const Ref& mref) {
  // A monitored name holder or lock holder is gone (its node too, perhaps): delete_lock/2
  // and del_name/2.
  if (auto r = lock_refs_.find(mref.ids); r != lock_refs_.end()) {
    const auto keys = r->second;
    for (const auto& key : keys) {
      auto it = locks_.find(key);
      if (it == locks_.end()) continue;
      for (const auto& h : it->second.holders) {
        if (h.second == mref) {
          remove_lock(key, h.first, true);
          break;
        }
      }
    }
  }
  if (auto n = name_refs_.find(mref.ids); n != name_refs_.end()) {
    auto it = names_.find(n->second);
    if (it != names_.end() && it->second.mref == mref) {
      delete_global_name(it->second.name);
    } else {
      name_refs_.erase(n);
    }
  }
}

}  // namespace chat::kernel
