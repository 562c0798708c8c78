// The chat application: the registered processes a chat node serves to the cluster, under
// one supervisor (chat_sup), as elixir_peer's Chat.Application starts them:
//   'Elixir.Chat.TaskSupervisor'  the Task.Supervisor protocol that Chat.send_message/2 uses;
//   'Elixir.Chat'                 an inbox printing binaries sent to {Chat, node}, member of
//                                 the pg group 'Elixir.Chat' (Chat.broadcast/1);
//   rex                           :rpc's server.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <map>
#include <set>
#include <string>

#include "chat/chat/functions.hpp"
#include "chat/chat/output.hpp"
#include "chat/chat/task_call.hpp"
#include "chat/kernel/gen.hpp"
#include "chat/kernel/kernel.hpp"
#include "chat/node/node.hpp"

namespace chat::service {

using kernel::gen_call_message;
using kernel::gen_reply;
using kernel::GenCall;
using kernel::parse_gen_call;

struct ChatStats {
  uint64_t tasks_started = 0;
  uint64_t tasks_failed = 0;
  uint64_t inbox_messages = 0;
};

// Lines whose io_request went to a peer's group leader and whose calls wait for the io_reply
// (each call keeps its arguments meanwhile). A group leader that never answers would have
// every call hold its arguments for the 5 s the wait lasts: past `limit` bytes, a call sends
// its line and goes on without waiting. A line for a busy connection waits here too (counted
// alike) until the queue has room; one that cannot wait, or waits 5 s, is dropped and logged.
struct IoWaits {
  uint64_t limit = uint64_t{64} << 20U;
  uint64_t bytes = 0;
  uint64_t went_on = 0;  // calls that did not wait, the limit being reached
  uint64_t dropped = 0;  // lines not sent: the group leader's connection stayed busy
};

struct ChatContext {
  Output& out;
  ChatStats stats;
  kernel::Kernel* kernel = nullptr;  // global and pg, for the functions that read them
  kernel::SupervisorStats supervisor;
  IoWaits io_waits;
  // Where a large line is copied (IO.puts of megabytes), off the loop; inline when null.
  node::Workers* workers = nullptr;
  uint64_t copying_bytes = 0;  // lines being copied there now
  // Seed app rule: the node whose own name starts with "moebi@" calls the sender back.
  [[nodiscard]] static bool is_moebi(const std::string& node_name) { return node_name.rfind("moebi@", 0) == 0; }
};

// Spawns chat_sup with the chat's services (and `extra` ones, e.g. the web dyno's); returns
// its pid.
term::Pid start_services(node::Node& node, ChatContext& ctx, std::vector<kernel::ChildSpec> extra = {});
// The pg group every chat node's inbox joins: 'Elixir.Chat'.
term::Term chat_group();

// Renders a term the way IO.puts/1 prints it; nullopt where IO.puts would raise. A binary's
// copy has room for the newline IO.puts adds, so a large one is copied once.
std::optional<std::string> puts_text(const term::Term& t);

class TaskSupervisor final : public node::Process {
 public:
  explicit TaskSupervisor(ChatContext& ctx) : ctx_(ctx) { trap_exit_ = true; }
  void receive(term::Term&& msg) override;

 private:
  ChatContext& ctx_;
  std::set<std::pair<uint32_t, uint32_t>> children_;
  std::vector<term::Pid> children_pids() const;
};

// A process that runs one table function (functions.hpp) and can call other nodes on the way.
// It prints with IO.puts semantics: to this node's stdout, or to the group leader a peer gave
// it (an io_request, answered before the function goes on, as IO.puts waits for its reply).
class FunctionProcess : public node::Process, public FunctionHost {
 public:
  explicit FunctionProcess(ChatContext& ctx) : ctx_(ctx) {}
  ~FunctionProcess() override {
    io_done();
    copy_done();
  }
  FunctionProcess(const FunctionProcess&) = delete;
  FunctionProcess& operator=(const FunctionProcess&) = delete;
  void receive(term::Term&& msg) override;

  node::Node& host_node() override { return node(); }
  kernel::Kernel* kernel() override { return ctx_.kernel; }
  const term::Pid& host_pid() const override { return self(); }
  bool puts(const term::Term& chardata, std::function<void()> then) override;
  void call_remote(const std::string& target, const std::string& fun, std::vector<term::Term> args,
                   TaskCall::Done done) override;
  void connect_node(const std::string& node_name, std::function<void(bool)> done) override;

 protected:
  // Messages the function machinery did not take.
  virtual void other(term::Term&& /*msg*/) {}
  ChatContext& ctx_;

 private:
  std::unique_ptr<TaskCall> call_;
  term::Term io_tag_;
  std::function<void()> after_io_;
  uint64_t io_timer_ = 0;
  uint64_t io_bytes_ = 0;  // counted in ctx_.io_waits while waiting
  void io_done();
  // Prints a line (its newline not yet added) to stdout or the group leader, then continues.
  void print(std::string line, std::function<void()> then);
  void send_io_request(std::string line);
  // Whether the group leader's connection has more than its busy limit queued.
  bool gl_busy();
  void drop_line(uint64_t size);  // past the limit, for a busy connection
  std::string held_line_;  // waiting for the group leader's connection to have room
  std::shared_ptr<std::function<void()>> resume_;
  // Lets a copy made off the loop tell whether this process still lives when it is done.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  uint64_t copying_ = 0;  // counted in ctx_.copying_bytes while its line is copied
  void copy_done();
  std::string connecting_;
  std::function<void(bool)> connected_;
  void connect_poll(uint64_t deadline_ms);
};

// One task started by the supervisor: waits for its {Owner, Ref, ReplyTo, Callers, MFA}
// message (Elixir's Task.Supervised gives up after 5 s with exit reason timeout, and with
// {shutdown, Reason} if the owner dies first), runs the function, sends {Ref, Result} to
// ReplyTo and exits normal — or exits with the crash reason.
// Elixir lib/task/supervised.ex (v1.14), reply/2,4 and invoke_mfa/2.
class ChatTask final : public FunctionProcess {
 public:
  ChatTask(ChatContext& ctx, bool reply, std::optional<term::Pid> owner)
      : FunctionProcess(ctx), reply_(reply), owner_(std::move(owner)) {}
  void started() override;

 private:
  void other(term::Term&& msg) override;
  void finish(const Outcome& outcome);

  bool reply_;
  bool running_ = false;
  uint64_t start_timer_ = 0;
  std::optional<term::Pid> owner_;
  term::Ref owner_monitor_;
  term::Term ref_;
  term::Term reply_to_;
  // The MFA being run, moved out of its message; the function may finish turns later.
  std::string module_;
  std::string fun_;
  std::vector<term::Term> args_;
};

// A process a peer spawned with SPAWN_REQUEST: erpc:execute_call/4 (rpc:call, erpc:call),
// erpc:execute_cast/3 (rpc:cast), or any other MFA. Its exit reason carries the result, as
// OTP's erpc expects: {Ref, return, Value} or {Ref, error, Reason, Stack}.
class SpawnedCall final : public FunctionProcess {
 public:
  SpawnedCall(ChatContext& ctx, std::string module, std::string function, std::vector<term::Term> args)
      : FunctionProcess(ctx), module_(std::move(module)), function_(std::move(function)), args_(std::move(args)) {}
  void started() override;

 private:
  std::string module_;
  std::string function_;
  std::vector<term::Term> args_;
};

// rex, the rpc server: answers OTP's features probe and the old-style {call, …} and
// {block_call, …} gen_server calls (rpc:block_call/4 still uses them).
class Rex final : public node::Process {
 public:
  explicit Rex(ChatContext& ctx) : ctx_(ctx) { trap_exit_ = true; }
  void receive(term::Term&& msg) override;

 private:
  ChatContext& ctx_;
  std::map<std::pair<uint32_t, uint32_t>, std::pair<term::Pid, term::Term>> pending_;  // worker -> caller, tag
};

// Chat.Inbox of elixir_peer: prints binaries, answers :count (what this incarnation printed),
// and crashes on any other call, as a GenServer without a matching handle_call clause does.
class Inbox final : public node::Process {
 public:
  explicit Inbox(ChatContext& ctx) : ctx_(ctx) {}
  void started() override;
  void receive(term::Term&& msg) override;
  bool take_binary(std::string_view line) override;

 private:
  void count_line();

  ChatContext& ctx_;
  int64_t count_ = 0;
};

}  // namespace chat::service
