// The node: pids, refs, registered names, links and monitors, and delivery of messages and
// exit signals between local processes and remote ones (through Transport). One loop thread,
// no locks. Signals are queued and run from drain(), so a process never re-enters itself.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <functional>
#include <unordered_map>
#include <vector>

#include "chat/node/ports.hpp"
#include "chat/node/process.hpp"
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

  term::Pid spawn(std::unique_ptr<Process> p, const std::string& registered_name = {});

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
  void reply(const term::Pid& from, const term::Pid& caller, const term::Term& tag, term::Term msg);
  [[nodiscard]] std::optional<term::Pid> whereis(const std::string& name) const;
  term::Ref make_ref();
  [[nodiscard]] bool is_local(const term::Pid& pid) const { return pid.node == name_ && pid.creation == creation_; }
  [[nodiscard]] bool alive(const term::Pid& pid) const;

  // Signals, as a process sends them.
  void send(const term::Pid& from, const term::Pid& to, term::Term msg);
  void send_named(const term::Pid& from, const std::string& name, const std::string& node_name, term::Term msg);
  void link(const term::Pid& a, const term::Pid& b);
  void unlink(const term::Pid& a, const term::Pid& b);
  term::Ref monitor(const term::Pid& watcher, const term::Pid& target);
  void demonitor(const term::Pid& watcher, const term::Ref& ref);
  void monitor_node(const term::Pid& watcher, const std::string& node_name);
  void demonitor_node(const term::Pid& watcher, const std::string& node_name);
  void exit(const term::Pid& pid, term::Term reason);
  uint64_t start_timer(const term::Pid& owner, uint64_t ms, std::function<void()> fire);
  void cancel_timer(const term::Pid& owner, uint64_t id);

  // Events from the transport.
  void peer_up(const std::string& peer);
  void peer_down(const std::string& peer);
  // One decoded distribution message from `peer`. Returns false if it is malformed (the
  // transport then closes that connection).
  bool control(const std::string& peer, const term::Term& control, std::optional<term::Term> payload);

  // Runs queued signals until none are left. Every entry point from the loop ends with it.
  void drain();

  [[nodiscard]] Counters counters() const;
  [[nodiscard]] std::vector<std::string> peers() const { return transport_.peers(); }

 private:
  struct InMonitor {
    term::Ref ref;
    term::Pid watcher;
    term::Term target;  // what the watcher named: our pid, or a registered name (atom)
  };
  struct Entry {
    std::unique_ptr<Process> process;
    std::string registered_name;
    std::vector<std::vector<uint32_t>> aliases;
    std::vector<term::Pid> links;
    std::vector<InMonitor> monitored_by;
  };
  struct OutMonitor {
    term::Pid watcher;
    term::Term target;  // pid, or {Name, Node} for a name
    std::string target_node;
  };
  enum class Kind { kMessage, kLinkExit, kExitSignal };
  struct Signal {
    Kind kind;
    term::Pid from;
    term::Pid to;
    term::Term data;  // the message, or the exit reason
  };

  // Adds a process without starting it (a spawn request answers before the process runs).
  term::Pid insert(std::unique_ptr<Process> p, const std::string& registered_name);
  static uint64_t local_key(const term::Pid& pid) { return (uint64_t{pid.serial} << 32) | pid.num; }
  Entry* find(const term::Pid& pid);
  const Entry* find(const term::Pid& pid) const;
  void enqueue(Kind kind, const term::Pid& from, const term::Pid& to, term::Term data);
  void deliver(Signal& s);
  void exit_signal(Entry& e, const term::Pid& from, const term::Term& reason, bool via_link);
  void terminate(const term::Pid& pid, const term::Term& reason);
  void add_link(const term::Pid& local, const term::Pid& other);
  bool remove_link(const term::Pid& local, const term::Pid& other);
  void send_remote(const std::string& peer, term::Term control, const term::Term* payload);
  void down(const term::Ref& ref, const OutMonitor& m, const term::Term& reason);

  // Remote control messages (node_remote.cpp).
  bool remote_monitor(const std::string& peer, const term::Pid& watcher, const term::Term& target, const term::Ref& ref);
  bool remote_demonitor(const term::Pid& watcher, const term::Term& target, const term::Ref& ref);
  void remote_monitor_exit(const term::Term& from, const term::Pid& to, const term::Ref& ref, const term::Term& reason);
  void remote_link(const std::string& peer, const term::Pid& from, const term::Pid& to);
  bool remote_spawn(const std::string& peer, const std::vector<term::Term>& c, const term::Term& args);

  std::string name_;
  Transport& transport_;
  Timers& timers_;
  uint32_t creation_ = 0;
  uint32_t next_num_ = 1;
  uint32_t next_serial_ = 0;
  uint64_t next_ref_ = 1;
  std::unordered_map<uint64_t, Entry> procs_;
  std::unordered_map<std::string, term::Pid> names_;
  std::map<std::vector<uint32_t>, OutMonitor> out_monitors_;  // keyed by our ref's words
  std::map<std::string, std::set<uint64_t>> node_watchers_;   // peer -> local pid keys
  std::map<std::vector<uint32_t>, term::Pid> aliases_;        // our alias refs -> owner
  SpawnHandler spawn_handler_;
  std::deque<Signal> queue_;
  std::vector<std::unique_ptr<Process>> graveyard_;
  bool draining_ = false;
  Counters counters_;
};

}  // namespace chat::node
