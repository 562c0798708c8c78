// The registered processes a chat node serves to the cluster:
//   'Elixir.Chat.TaskSupervisor'  the Task.Supervisor protocol that Chat.send_message/2 uses;
//   net_kernel                    is_auth, so that Node.ping/1 answers pong;
//   'Elixir.Chat'                 an inbox printing binaries sent to {Chat, node}.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "chat/chat/output.hpp"
#include "chat/chat/task_call.hpp"
#include "chat/node/node.hpp"

namespace chat::service {

struct ChatStats {
  uint64_t tasks_started = 0;
  uint64_t tasks_failed = 0;
  uint64_t inbox_messages = 0;
};

struct ChatContext {
  Output& out;
  ChatStats stats;
  // Seed app rule: the node whose own name starts with "moebi@" calls the sender back.
  [[nodiscard]] static bool is_moebi(const std::string& node_name) { return node_name.rfind("moebi@", 0) == 0; }
};

void start_services(node::Node& node, ChatContext& ctx);

// Renders a term the way IO.puts/1 prints it; nullopt where IO.puts would raise.
std::optional<std::string> puts_text(const term::Term& t);

class TaskSupervisor final : public node::Process {
 public:
  explicit TaskSupervisor(ChatContext& ctx) : ctx_(ctx) { trap_exit_ = true; }
  void receive(const term::Term& msg) override;

 private:
  ChatContext& ctx_;
  std::set<std::pair<uint32_t, uint32_t>> children_;
  std::vector<term::Pid> children_pids() const;
};

// One task started by the supervisor: waits for its {Owner, Ref, ReplyTo, Callers, MFA}
// message (Elixir's Task.Supervised gives up after 5 s with exit reason timeout), runs the
// Chat function, replies {Ref, Result} and exits normal — or exits with the crash reason.
class ChatTask final : public node::Process {
 public:
  ChatTask(ChatContext& ctx, bool reply) : ctx_(ctx), reply_(reply) {}
  void started() override;
  void receive(const term::Term& msg) override;

 private:
  void run(const std::string& fun, const std::vector<term::Term>& args);
  void call_back(const std::string& target, const std::string& fun, std::vector<term::Term> args);
  void finish(const term::Term& result);

  ChatContext& ctx_;
  bool reply_;
  bool running_ = false;
  uint64_t start_timer_ = 0;
  std::optional<term::Pid> owner_;
  term::Term ref_;
  std::unique_ptr<TaskCall> call_;
};

class NetKernel final : public node::Process {
 public:
  void receive(const term::Term& msg) override;
};

class Inbox final : public node::Process {
 public:
  explicit Inbox(ChatContext& ctx) : ctx_(ctx) {}
  void receive(const term::Term& msg) override;

 private:
  ChatContext& ctx_;
};

}  // namespace chat::service
