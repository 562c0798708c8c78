// OTP's `global` on a C++ node: global_name_server with its locker, resolvers and registrar,
// speaking global's protocol version 8 with the global_name_servers of BEAM nodes
// (kernel/src/global.erl of OTP 25.2, 27.3 and 29.1 speak the same version). What it gives the
// cluster, as a BEAM node's global does:
//   - the connect protocol: init_connect / init_connect_ack, the lockers' negotiation of the
//     lock {global, [LockerA, LockerB]} over both partitions, exchange of names, resolution
//     of clashes, resolved, new_nodes and in_sync — so :global.sync() on any node returns;
//   - the fully connected network: after syncing with a node it connects to the nodes that
//     node knows (sync_others), and tells the nodes it knows about it (new_nodes);
//   - prevent_overlapping_partitions (the default since OTP 25): lost_connection and
//     remove_connection, as a BEAM handles them;
//   - the name table and locks ({set_lock, Id} / {del_lock, Id} / {register, …} calls of
//     other nodes' registrars and lockers), with monitors that drop the names and locks of
//     processes that die or nodes that go.
// The comments name the Erlang functions each piece ports, so the two can be read side by side.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/kernel/co.hpp"
#include "chat/kernel/gen.hpp"
#include "chat/node/node.hpp"

namespace chat::kernel {

inline constexpr int64_t kGlobalVsn = 8;           // ?vsn
inline constexpr int64_t kGlobalPopVsn = 7;        // ?pop_vsn, ?pgpv_vsn
inline constexpr int64_t kGlobalVerifyVsn = 8;     // ?verify_connect_vsn
inline const std::string kGlobalName = "global_name_server";

class GlobalServer;

struct GlobalStats {
  uint64_t syncs = 0;        // connect sessions completed (resolved or in_sync)
  uint64_t lost_connections = 0;
};

// What the server's satellite processes share with it, and outlives it: a restarted server
// starts a new locker and registrar, and an old one finds `server` empty.
struct GlobalShared {
  GlobalServer* server = nullptr;
  // Funs the server hands to its locker in {cancel, Node, Tag, Fun} (the new_nodes broadcast,
  // run before the lock is deleted), by number.
  std::unordered_map<int64_t, std::function<void()>> funs;
  int64_t next_fun = 1;
  // Completions of registrations asked for by this node's own code, by number.
  std::unordered_map<int64_t, std::function<void(bool)>> done;
  int64_t next_done = 1;
  GlobalStats stats;
};

// The name table, read by rpc/erpc calls (global:whereis_name/1, registered_names/0).
struct GlobalName {
  term::Term name;
  term::Pid pid;
  term::Term method;
  term::Ref mref;
};

class GlobalServer final : public node::Process {
 public:
  explicit GlobalServer(std::shared_ptr<GlobalShared> shared);
  ~GlobalServer() override;
  void started() override;
  void receive(term::Term&& msg) override;

  // global:whereis_name/1 (undefined: nullopt) and global:registered_names/0.
  [[nodiscard]] std::optional<term::Pid> whereis(const term::Term& name) const;
  [[nodiscard]] std::vector<term::Term> registered_names() const;
  [[nodiscard]] std::vector<std::string> known_nodes() const;
  [[nodiscard]] const std::vector<std::string>& synced() const { return synced_; }
  // global:register_name/2 and unregister_name/1 from this node's code: done(yes/no) later.
  void register_name(const term::Term& name, const term::Pid& pid, std::function<void(bool)> done);
  void unregister_name(const term::Term& name, std::function<void(bool)> done);
  // global:sync/0: `done` once every visible node is synced (or gone).
  void sync(std::function<void()> done);

  // For the locker and the registrar (same thread): the lock table.
  [[nodiscard]] bool can_set_lock(const term::Term& id) const;
  [[nodiscard]] bool is_global_lock_set() const;
  [[nodiscard]] const term::Pid& locker() const { return locker_; }
  [[nodiscard]] const std::map<std::string, GlobalName>& names() const { return names_; }

 private:
  // The per-node state global.erl keeps in its process dictionary.
  struct Session {
    std::optional<term::Term> my_tag;   // {sync_tag_my, Node}
    std::optional<term::Term> his_tag;  // {sync_tag_his, Node}
    std::optional<int64_t> prot_vsn;    // {prot_vsn, Node}
    std::optional<term::Term> lock_id;  // {lock_id, Node}
    // {wait_lock, Node}: lock_is_set, or the names of an exchange that came first.
    bool lock_set = false;
    std::optional<term::Term> exchange_names;
    // {save_ops, Node}: our resolver's ops, or the peer's resolved message that came first.
    std::optional<term::Term> ops;
    std::optional<std::vector<term::Term>> resolved;  // HisKnown, Names_ext, HisResolved
    // {pre_connect, Node}: an init_connect that came before our nodeup.
    std::optional<std::vector<term::Term>> pre_connect;  // Vsn, InitMsg, HisTag
  };
  struct Resolver {
    term::Term tag;
    term::Pid pid;
  };
  struct Lock {
    term::Term resource;
    term::Term requester;
    std::vector<std::pair<term::Pid, term::Ref>> holders;
  };
  struct SyncWaiter {
    std::function<void()> done;
    std::set<std::string> nodes;
  };
  enum class Down { kDisconnected, kRemoveConnection, kIgnore };

  // global_server.cpp: the connect algorithm.
  void handle_call(const GenCall& call);
  void handle_cast(const term::Term& msg);
  void handle_info(const term::Term& msg);
  void handle_nodeup(const std::string& node);
  void handle_nodedown(const std::string& node, Down what);
  void init_connect(int64_t vsn, const std::string& node, const term::Term& init_msg, const term::Term& his_tag,
                    int64_t his_vsn);
  void restart_connect(const std::string& node, const std::optional<term::Term>& my_tag);
  void lock_is_set(const std::string& node, const term::Term& lock_id);
  void exchange(const std::string& node, term::Term names);
  void resolved(const std::string& node, const term::Term& his_resolved, const term::Term& his_known,
                const term::Term& names_ext);
  void cancel_locker(const std::string& node, const std::optional<term::Term>& tag, int64_t fun = 0);
  void cancel_resolved_locker(const std::string& node, int64_t fun);
  void send_cancel_connect(const std::string& node, const std::optional<term::Term>& my_tag);
  void send_cancel_connect_message(const std::string& node, const term::Term& his_tag);
  void new_nodes(const term::Term& ops, const std::string& conn_node, const term::Term& names_ext,
                 const term::Term& nodes, const term::Term& extra);
  std::vector<std::string> add_to_known(const term::Term& nodes);
  void sync_others(const std::vector<std::string>& nodes);
  void synced_with(const std::string& node);
  void lost_connection(const term::Term& msg);
  void inform_connection_loss(const std::string& node);
  void volatile_send(const std::string& node, term::Term msg);
  void volatile_multicast(const term::Term& msg, const std::string& ignore, int64_t min_vsn);
  [[nodiscard]] bool potentially_known(const std::string& node) const;
  [[nodiscard]] int64_t node_vsn(const std::string& node) const;
  [[nodiscard]] term::Term known_list(int64_t vsn) const;
  [[nodiscard]] term::Term known_map() const;
  void to_locker(term::Term msg);
  void cast_to(const std::string& node, term::Term msg);
  Session& session(const std::string& node) { return sessions_[node]; }
  std::optional<term::Term> my_tag(const std::string& node) const;

  // global_names.cpp: the name and lock tables.
  void ins_name(const term::Term& name, const term::Pid& pid, const term::Term& method, const term::Term& from,
                const term::Term& extra);
  void ins_name_ext(const term::Term& name, const term::Pid& pid, const term::Term& method, const std::string& reg_node,
                    const term::Term& from, const term::Term& extra);
  void insert_global_name(const term::Term& name, const term::Pid& pid, const term::Term& method,
                          const term::Term& from, const term::Term& extra);
  [[nodiscard]] bool lock_still_set(const term::Term& from, const term::Term& extra) const;
  void delete_global_name(const term::Term& name, bool keep_entry = false);
  void do_ops(const term::Term& ops, const std::string& conn_node, const term::Term& names_ext, const term::Term& extra);
  bool handle_set_lock(const term::Term& id, const term::Pid& pid);
  void handle_del_lock(const term::Term& id, const term::Pid& pid);
  void remove_lock(const std::string& key, const term::Pid& pid, bool down);
  void down(const term::Ref& mref);
  [[nodiscard]] term::Term names_list() const;
  [[nodiscard]] term::Term names_ext_list() const;

  std::shared_ptr<GlobalShared> shared_;
  term::Pid locker_;
  term::Pid registrar_;
  std::map<std::string, int64_t> known_;    // node -> protocol version (0: not yet known)
  std::map<std::string, int64_t> pending_;  // {pending, Node}
  std::set<std::string> removing_;          // {removing, Node}
  std::vector<std::string> synced_;
  std::map<std::string, Resolver> resolvers_;
  std::map<std::string, Session> sessions_;
  std::vector<SyncWaiter> syncers_;
  int64_t next_tag_ = 1;
  int64_t next_op_id_ = 1;
  int64_t creation_extension_ = 0;
  bool prevent_overlapping_partitions_ = true;
  bool connect_all_ = true;
  bool global_lock_down_ = false;
  // {{NodeA, NodeB}: {ExtendedCreationA, OpIdA, Timer}}
  struct LostConnection {
    term::Term xcreation;
    term::Term op_id;
    uint64_t timer = 0;
  };
  std::map<std::pair<std::string, std::string>, LostConnection> lost_connections_;

  std::map<std::string, GlobalName> names_;  // by encoded name
  std::map<std::string, std::pair<term::Pid, std::string>> names_ext_;  // encoded name -> pid, RegNode
  std::unordered_map<term::Pid, std::set<std::string>, node::PidHash> pid_names_;
  std::map<term::RefIds, std::string> name_refs_;  // monitor ref -> encoded name
  std::map<std::string, Lock> locks_;                        // by encoded ResourceId
  std::map<term::RefIds, std::set<std::string>> lock_refs_;  // monitor ref -> resources
};

// Lock operations over the servers of a set of nodes (set_lock_on_nodes, del_lock,
// delete_global_lock, random_sleep), shared by the locker and the registrar.
class GlobalClient : public CoProcess {
 protected:
  explicit GlobalClient(std::shared_ptr<GlobalShared> shared) : shared_(std::move(shared)) {}
  Co<bool> set_lock_on_nodes(term::Term id, std::vector<std::string> nodes);
  Co<> del_lock(term::Term id, std::vector<std::string> nodes);
  Co<> delete_global_lock(term::Term id, std::vector<std::string> nodes);
  Co<> random_sleep(uint32_t times);
  [[nodiscard]] bool can_set_lock(const term::Term& id) const;
  std::shared_ptr<GlobalShared> shared_;
};

// The locker (the_locker in global.erl): one per node, it takes the lock on both partitions
// when two nodes connect, and holds it until the server cancels it.
class GlobalLocker final : public GlobalClient {
 public:
  GlobalLocker(std::shared_ptr<GlobalShared> shared, std::vector<std::string> known);

 private:
  struct Him {
    std::string node;
    term::Pid locker;
    int64_t vsn = 0;
    term::Term my_tag;
    term::Term his_tag;
  };
  Co<> main() override;
  Co<> the_locker_message(term::Term msg);
  Co<> select_node();
  Co<bool> lock_nodes_safely(term::Term lock_id, std::vector<std::string> extra);
  Co<> lock_is_set(Him him, std::vector<std::string> known1, term::Term lock_id);
  Co<> wait_cancel_lock(std::string node, term::Term lock_id, term::Term my_tag, std::vector<std::string> known);
  void send_lock_set(bool is_set, const term::Pid& his_locker, int64_t vsn, const term::Term& his_tag);
  void update_known();  // update_locker_known/1: takes add/remove messages without waiting
  void add_known(const std::vector<std::string>& nodes);
  void remove_known(const std::string& node);
  void remove_node(const std::string& node, const term::Term& tag);
  void call_fun(const term::Term& fun);
  [[nodiscard]] term::Term lock_id_with(const term::Pid& his_locker) const;
  [[nodiscard]] std::optional<Him> find_node_tag(const std::string& node) const;

  std::vector<Him> local_;
  std::vector<Him> remote_;
  std::vector<std::string> known_;
  std::string the_boss_;
  bool just_synced_ = false;
};

// The registrar: runs this node's own register/unregister requests under global's lock on
// every known node (trans_all_known/1).
class GlobalRegistrar final : public GlobalClient {
 public:
  explicit GlobalRegistrar(std::shared_ptr<GlobalShared> shared) : GlobalClient(std::move(shared)) {}

 private:
  Co<> main() override;
  Co<std::vector<std::string>> set_lock_known(term::Term id);
};

// A resolver (resolver/2): waits for the other node's names, compares them with ours and
// resolves clashes by calling the resolve method on the node of our process.
class GlobalResolver final : public CoProcess {
 public:
  GlobalResolver(std::shared_ptr<GlobalShared> shared, std::string node, term::Term tag)
      : shared_(std::move(shared)), node_(std::move(node)), tag_(std::move(tag)) {}

 private:
  Co<> main() override;
  Co<term::Term> resolve_it(const term::Term& method, const term::Term& name, const term::Pid& pid,
                            const term::Pid& pid2);
  std::shared_ptr<GlobalShared> shared_;
  std::string node_;
  term::Term tag_;
};

// sync_other/2: connects to a node heard of from another (as erlang:monitor_node/2 does),
// then tells it we are in sync; if it cannot be reached, the server hears {extra_nodedown, Node}.
class GlobalSyncOther final : public node::Process {
 public:
  explicit GlobalSyncOther(std::string node) : node_(std::move(node)) {}
  void started() override;
  void receive(term::Term&& msg) override;

 private:
  std::string node_;
};

// global:resolve_it/4 run here for one of our processes: the three resolve functions global
// exports (random_exit_name, random_notify_name, notify_all_name); anything else is not a
// function this node can run, and the name is then unregistered, as when a method crashes.
term::Term resolve_here(node::Node& node, const term::Pid& self, const term::Term& method, const term::Term& name,
                        const term::Pid& pid, const term::Pid& pid2);
// fun global:random_exit_name/3, the method of names this node registers.
term::Term random_exit_name_fun();
// The key global's tables use for a name or resource: its external format.
std::string term_key(const term::Term& t);

}  // namespace chat::kernel
