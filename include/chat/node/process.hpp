// A process of this node: an object with a pid, a mailbox (receive), links and monitors.
// The node calls receive() from its run queue, one message at a time, on the loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "chat/term/term.hpp"

namespace chat::node {

class Node;

class Process {
 public:
  Process() = default;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  virtual ~Process() = default;

  // Called once, right after spawn, when self() is valid.
  virtual void started() {}
  // One message from the mailbox: a plain message, or {'EXIT', From, Reason} when trapping
  // exits, or {'DOWN', Ref, process, Item, Reason} for a monitor.
  // The process owns it and may move parts out (a large binary need not be copied again).
  virtual void receive(term::Term&& msg) = 0;
  // A message from a peer that is a small binary, offered as its bytes before any term is
  // made of it (a chat line, the commonest message). True when taken; false (the default)
  // and it comes to receive() as a term.
  virtual bool take_binary(std::string_view /*bytes*/) { return false; }

  [[nodiscard]] const term::Pid& self() const { return self_; }
  [[nodiscard]] bool traps_exits() const { return trap_exit_; }
  // Where io requests of this process go: set for processes a peer spawned (SPAWN_REQUEST
  // names the caller's group leader); empty means this node's own stdout.
  [[nodiscard]] const std::optional<term::Pid>& group_leader() const { return group_leader_; }
  void set_group_leader(term::Pid gl) { group_leader_ = std::move(gl); }

 protected:
  Node& node() { return *node_; }
  [[nodiscard]] const Node& node() const { return *node_; }
  void send(const term::Pid& to, term::Term msg);
  void send_named(const std::string& name, const std::string& node_name, term::Term&& msg);
  void send_named(const std::string& name, const std::string& node_name, const term::Term& msg);
  void link(const term::Pid& other);
  void unlink(const term::Pid& other);
  // A pid, or {Name, Node}.
  term::Ref monitor(const term::Term& target);
  void demonitor(const term::Ref& ref);
  // Delivers {nodedown, Node} to this process when the connection to node_name goes (or fails).
  void monitor_node(const std::string& node_name);
  void demonitor_node(const std::string& node_name);
  // Ends this process with `reason`; links and monitors are told.
  void exit(term::Term reason);
  // Runs `fire` after ms unless this process has ended or cancelled it.
  uint64_t after(uint64_t ms, std::function<void()> fire);
  void cancel_timer(uint64_t id);

  bool trap_exit_ = false;

 private:
  std::optional<term::Pid> group_leader_;
  friend class Node;
  Node* node_ = nullptr;
  term::Pid self_;
  std::unordered_set<uint64_t> timers_;  // pending, cancelled when the process ends
};

}  // namespace chat::node
