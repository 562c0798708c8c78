// The node: pids, refs, registered names, links and monitors, and delivery of messages and
// exit signals between local processes and remote ones (through Transport). One loop thread,
// no locks. Signals are queued and run from drain(), so a process never re-enters itself.
//
// Every table is indexed both ways (by process and by peer node), so that no operation a peer
// can trigger costs more than O(log n) or amortised O(1) in the number of processes, links or
// monitors: a process that exits touches only its own links and monitors, and a peer that goes
// down touches only what involved that peer.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "chat/dist/framing.hpp"
#include "chat/node/ports.hpp"
#include "chat/node/process.hpp"
#include "chat/node/warn_budget.hpp"
#include "chat/term/term.hpp"

namespace chat::node {

struct Counters {
  uint64_t messages_in = 0;   // delivered to local processes from peers
  uint64_t messages_out = 0;  // sent to peers
  uint64_t processes = 0;     // alive now
  uint64_t links = 0;         // alive now (local ends)
  uint64_t monitors = 0;      // alive now (both directions)
  uint64_t malformed = 0;     // control messages this node could not make sense of
};

struct PidHash {
  size_t operator()(const term::Pid& p) const noexcept;
};
// The tables a peer can grow to a million entries (monitors on one process, links to it) are
// ordered trees, as the BEAM's are: a hash table would rehash all of it at once as it grows
// (0.4 s at a million monitors), with the loop stalled meanwhile.
struct PidLess {
  bool operator()(const term::Pid& a, const term::Pid& b) const noexcept;
};
struct RefLess {
  bool operator()(const term::Ref& a, const term::Ref& b) const noexcept;
};

class Node {
 public:
  Node(std::string name, Transport& transport, Timers& timers);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] uint32_t creation() const { return creation_; }
  // Set once EPMD has answered, before the first spawn: pids and refs carry it.
  void set_creation(uint32_t c) { creation_ = c; }
  [[nodiscard]] Transport& transport() { return transport_; }
  // A hidden node (erl -hidden) sees no peer as visible: no nodeup for global or pg.
  void set_hidden(bool hidden) { hidden_ = hidden; }
  [[nodiscard]] bool hidden() const { return hidden_; }

  term::Pid spawn(std::unique_ptr<Process> p, const std::string& registered_name = {});
  // Registers a live process under `name` (erlang:register/2); false if either is taken.
  bool register_name(const term::Pid& pid, const std::string& name);

  // What a SPAWN_REQUEST from a peer runs: the process for Module:Function(Args). A BEAM spawns
  // even an undefined function (the process then exits with undef), so a handler always
  // returns a process.
  using SpawnHandler = std::function<std::unique_ptr<Process>(const std::string& module, const std::string& function,
                                                              const std::vector<term::Term>& args)>;
  void set_spawn_handler(SpawnHandler h) { spawn_handler_ = std::move(h); }

  // An alias of `owner` (erlang:alias/0): messages sent to the ref reach owner until unalias.
  term::Ref alias(const term::Pid& owner);
  void unalias(const term::Ref& ref);
  // Sends to an alias: locally, or as ALIAS_SEND when the peer negotiated DFLAG_ALIAS (a BEAM
  // drops it otherwise, and so do we).
  void send_alias(const term::Pid& from, const term::Ref& alias, term::Term msg);
  // True when a send to `alias` can arrive: ours, or a peer's that negotiated DFLAG_ALIAS.
  [[nodiscard]] bool alias_reachable(const term::Ref& alias) const;
  // Replies to a gen call tag: [alias | Ref] goes to the alias when the peer supports it,
  // anything else to the caller's pid (gen:reply/2).
  void reply(const term::Pid& from, const term::Pid& caller, term::Term tag, term::Term msg);
  [[nodiscard]] std::optional<term::Pid> whereis(const std::string& name) const;
  term::Ref make_ref();
  [[nodiscard]] bool is_local(const term::Pid& pid) const { return pid.node == name_ && pid.creation == creation_; }
  [[nodiscard]] bool alive(const term::Pid& pid) const;

  // Signals, as a process sends them. A send with `connect` false to a node we are not
  // connected to is dropped, as erlang:send/3 with [noconnect] does.
  void send(const term::Pid& from, const term::Pid& to, term::Term msg, bool connect = true);
  void send_named(const term::Pid& from, const std::string& name, const std::string& node_name, term::Term&& msg,
                  bool connect = true);
  // The same for a message the sender keeps: to another node it is encoded from where it is,
  // not copied first (a sender repeating one message pays no copy per send).
  void send_named(const term::Pid& from, const std::string& name, const std::string& node_name,
                  const term::Term& msg, bool connect = true);
  void link(const term::Pid& a, const term::Pid& b);
  void unlink(const term::Pid& a, const term::Pid& b);
  // erlang:monitor(process, Target): Target is a pid, or {Name, Node} for a registered name.
  // The 'DOWN' message names the target as given.
  term::Ref monitor(const term::Pid& watcher, const term::Term& target);
  void demonitor(const term::Pid& watcher, const term::Ref& ref);
  void monitor_node(const term::Pid& watcher, const std::string& node_name);
  void demonitor_node(const term::Pid& watcher, const std::string& node_name);
  // net_kernel:monitor_nodes/1: {nodeup, Node} and {nodedown, Node} for visible peers. The
  // nodeup of a connection comes before any message from it, the nodedown after all of them.
  void monitor_nodes(const term::Pid& watcher, bool on);
  // Ends a local process with `reason` (its own exit).
  void exit(const term::Pid& pid, term::Term reason);
  // erlang:exit(To, Reason) sent by `from`: an exit signal, local or as EXIT2.
  void exit_signal(const term::Pid& from, const term::Pid& to, term::Term reason);
  uint64_t start_timer(const term::Pid& owner, uint64_t ms, std::function<void()> fire);
  [[nodiscard]] uint64_t now_ms() { return timers_.now_ms(); }
  // The one budget of log lines that peers can cause at will (node/warn_budget.hpp).
  WarnBudget& peer_warnings() { return peer_warnings_; }
  // spdlog::warn (or another level) within that budget.
  template <typename... Args>
  void peer_warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    peer_warnings_.log(now_ms(), spdlog::level::warn, fmt, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void peer_log(spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt, Args&&... args) {
    peer_warnings_.log(now_ms(), level, fmt, std::forward<Args>(args)...);
  }
  void cancel_timer(const term::Pid& owner, uint64_t id);

  // net_kernel:connect_node/1 (asynchronous: nodeup tells when) and erlang:disconnect_node/1.
  void connect(const std::string& node_name) { transport_.connect(node_name); }
  void disconnect(const std::string& node_name) { transport_.disconnect(node_name); }
  // Peers connected as visible nodes (erlang:nodes()), in no particular order.
  [[nodiscard]] std::vector<std::string> visible_nodes() const;
  [[nodiscard]] bool is_visible(const std::string& peer) const { return visible_.contains(peer); }

  // Events from the transport.
  void peer_up(const std::string& peer);
  void peer_down(const std::string& peer);
  // One decoded distribution message from `peer`. Returns false if it is malformed (the
  // transport then closes that connection).
  bool control(const std::string& peer, const term::Term& control, std::optional<term::Term> payload);
  // The same for a message as the frame parser gives it: a plain send it took apart without
  // building the control tuple (dist::Send), or any other control.
  bool message(const std::string& peer, dist::Message&& m);

  // True while the links and monitors of a peer that went down are being undone.
  [[nodiscard]] bool tearing_down() const { return !departed_.empty(); }

  // Runs queued signals until none are left. Every entry point from the loop ends with it.
  void drain();

  [[nodiscard]] Counters counters() const;
  [[nodiscard]] std::vector<std::string> peers() const { return transport_.peers(); }

 private:
  using LocalKey = uint64_t;  // serial and number of one of our pids
  using RefIds = term::RefIds;
  struct RefIdsHash {
    size_t operator()(const RefIds& ids) const noexcept;
  };
  // A monitor someone holds on one of our processes. Ours are in out_monitors_ too.
  struct InMonitor {
    term::Pid watcher;
    term::Term target;  // what the watcher named: our pid, or a registered name (atom)
  };
  struct Entry {
    std::unique_ptr<Process> process;
    std::string registered_name;
    std::vector<RefIds> aliases;
    std::set<term::Pid, PidLess> links;
    std::map<term::Ref, InMonitor, RefLess> monitored_by;
    std::unordered_set<RefIds, RefIdsHash> watching;  // our refs of the monitors this process holds
    std::unordered_set<std::string> watched_nodes;     // monitor_node/2
  };
  struct OutMonitor {
    term::Pid watcher;
    term::Term target;  // what the DOWN message names: a pid, or {Name, Node}
    std::string target_node;
    term::Term monitored;  // on the target's node: its pid, or its registered name (atom)
    bool requested = false;    // MONITOR_P went out (or is queued behind the connection setup)
  };
  // Per peer node: what must be undone when it goes down.
  struct PeerIndex {
    std::unordered_set<RefIds, RefIdsHash> out_monitors;  // ours, on processes there
    std::map<term::Ref, LocalKey, RefLess> in_monitors;                        // theirs, on our processes
    std::map<term::Pid, std::unordered_set<LocalKey>, PidLess> links;  // remote pid -> our ends
  };
  // A peer's index after it went down, undone a slice per loop iteration (teardown_some), so
  // that a peer that left a million monitors behind does not stall the loop for seconds.
  struct Departed {
    std::string peer;
    PeerIndex idx;
  };
  // Links and monitors of departed peers undone per loop iteration: a few milliseconds' worth.
  static constexpr size_t kTeardownSlice = 2048;
  enum class Kind { kMessage, kLinkExit, kExitSignal };
  // For one of our processes: enqueue() drops a signal to any other pid, so the receiver is
  // held by its key alone.
  struct Signal {
    Kind kind;
    LocalKey to;
    term::Pid from;
    term::Term data;  // the message, or the exit reason
  };

  // Adds a process without starting it (a spawn request answers before the process runs).
  term::Pid insert(std::unique_ptr<Process> p, const std::string& registered_name);
  static LocalKey local_key(const term::Pid& pid) { return (uint64_t{pid.serial} << 32) | pid.num; }
  static LocalKey local_key(const dist::PidView& pid) { return (uint64_t{pid.serial} << 32) | pid.num; }
  Entry* find(const term::Pid& pid);
  const Entry* find(const term::Pid& pid) const;
  Entry* find_target(const term::Term& target);
  void enqueue(Kind kind, term::Pid from, const term::Pid& to, term::Term data);
  // A message signal needs no sender: Erlang messages do not carry it.
  void enqueue_message(LocalKey to, term::Term&& payload) {
    queue_.push_back(Signal{Kind::kMessage, to, {}, std::move(payload)});
  }
  // The process a message from a peer goes to (SEND, SEND_SENDER: a pid; REG_SEND: a name),
  // counted as received; nullopt for another node's pid or an unknown name. Like a BEAM, the
  // node drops such a message, and one to a dead pid.
  std::optional<LocalKey> recipient(const std::string& peer, const dist::PidView& to);
  std::optional<LocalKey> recipient(const std::string& peer, std::string_view to_name);
  // A received message's way to one of our processes: a small binary is offered to it as bytes
  // (Process::take_binary) when it would be next anyway; the rest goes through the queue.
  void deliver_in(LocalKey to, dist::Message& m);
  void deliver(Signal& s);
  void exit_signal(Entry& e, const term::Pid& from, const term::Term& reason, bool via_link);
  void terminate(const term::Pid& pid, const term::Term& reason);
  bool add_link(const term::Pid& local, const term::Pid& other);
  bool remove_link(const term::Pid& local, const term::Pid& other);
  void send_remote(const std::string& peer, term::Term control, const term::Term* payload);
  void send_remote(const std::string& peer, const dist::SendParts& send, const term::Term& payload);
  void request_monitor(const RefIds& ids, OutMonitor& m);
  void down(const RefIds& ids, const OutMonitor& m, const term::Term& reason);
  void add_in_monitor(Entry& e, const term::Ref& ref, InMonitor m);
  bool remove_in_monitor(Entry& e, const term::Ref& ref, const term::Pid* watcher);
  OutMonitor take_out_monitor(std::unordered_map<RefIds, OutMonitor, RefIdsHash>::iterator it);
  void notify_nodes(const std::string& peer, const char* what);
  // Undoes up to `budget` links and monitors of departed peers; true when all are undone.
  bool teardown_some(size_t budget);
  void schedule_teardown();
  // True while the link between our `local` and a remote pid belongs to the current
  // connection of its node (a link whose node went down is broken, its exit on its way).
  [[nodiscard]] bool remote_link_live(const term::Pid& other, LocalKey local) const;

  // Remote control messages (node_remote.cpp).
  bool remote_monitor(const std::string& peer, const term::Pid& watcher, const term::Term& target, const term::Ref& ref);
  bool remote_demonitor(const term::Pid& watcher, const term::Term& target, const term::Ref& ref);
  void remote_monitor_exit(const term::Pid& to, const term::Ref& ref, const term::Term& reason);
  void remote_link(const std::string& peer, const term::Pid& from, const term::Pid& to);
  bool remote_spawn(const std::string& peer, const std::vector<term::Term>& c, const term::Term& args);

  term::NodeName name_;  // shared by every pid and reference this node makes
  Transport& transport_;
  Timers& timers_;
  uint32_t creation_ = 0;
  uint32_t next_num_ = 1;
  uint32_t next_serial_ = 0;
  uint64_t next_ref_ = 1;
  bool hidden_ = false;
  std::unordered_map<LocalKey, Entry> procs_;
  // Looked up by a view into the frame that names it (REG_SEND), with no string made.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, term::Pid, NameHash, std::equal_to<>> names_;
  // The name recipient() found last (empty: none) and its process, which holds that name
  // until it terminates.
  std::string last_name_;
  LocalKey last_name_key_ = 0;
  Process* last_name_proc_ = nullptr;
  std::unordered_map<RefIds, OutMonitor, RefIdsHash> out_monitors_;  // keyed by our ref's words
  std::unordered_map<std::string, PeerIndex> by_peer_;
  std::deque<Departed> departed_;
  uint64_t teardown_timer_ = 0;  // nonzero while a slice of departed_ is scheduled
  std::unordered_map<std::string, std::unordered_set<LocalKey>> node_watchers_;  // peer -> local pid keys
  std::unordered_set<LocalKey> nodes_watchers_;  // monitor_nodes subscribers
  std::unordered_set<std::string> visible_;
  std::unordered_map<RefIds, term::Pid, RefIdsHash> aliases_;  // our alias refs -> owner
  SpawnHandler spawn_handler_;
  // Signals in order, read from queue_head_: a vector rather than a deque, whose blocks of a
  // few signals each were allocated and freed as messages flowed through.
  std::vector<Signal> queue_;
  size_t queue_head_ = 0;
  // Slots kept between bursts; past this many the vector is given back once drained.
  static constexpr size_t kKeepSignals = 1024;
  std::vector<std::unique_ptr<Process>> graveyard_;
  bool draining_ = false;
  Counters counters_;
  WarnBudget peer_warnings_;
};

}  // namespace chat::node
