// The caller's side of Chat.send_message: what
//   Task.Supervisor.async({Chat.TaskSupervisor, target}, Chat, fun, args) |> Task.await()
// does on the wire (Elixir lib/task/supervisor.ex and lib/task.ex, v1.14–v1.18), run on behalf
// of a process of ours that forwards its mailbox here:
//   1. gen_call {start_task, [{Node, Owner, Owner}, monitor], temporary, nil} to the supervisor,
//      monitored as gen:call does (no supervisor: noproc at once; node gone: nodedown);
//   2. {Tag, {ok, TaskPid}}: link and monitor TaskPid, send it
//      {Owner, Ref, ReplyTo, [Owner], {Chat, fun, args}};
//   3. {Ref, Result} is the answer; a 'DOWN' for Ref, a lost node or the timeout is an exit.
// We are the client here, so the tag is a plain ref and replies come to our pid: no alias is
// needed (a BEAM drops sends to an alias unless DFLAG_ALIAS was negotiated).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "chat/node/node.hpp"
#include "chat/term/term.hpp"

namespace chat::service {

class TaskCall {
 public:
  struct Outcome {
    bool ok = false;
    term::Term value;  // the function's result, or the exit reason
  };
  using Done = std::function<void(Outcome)>;

  TaskCall(node::Node& node, term::Pid owner, std::string target, std::string fun, std::vector<term::Term> args,
           Done done, uint64_t timeout_ms = 5000);
  TaskCall(const TaskCall&) = delete;
  TaskCall& operator=(const TaskCall&) = delete;
  ~TaskCall();

  void start();
  // Offers one message from the owner's mailbox; true if it belonged to this call.
  bool handle(const term::Term& msg);
  [[nodiscard]] bool finished() const { return state_ == State::kDone; }

 private:
  enum class State { kIdle, kStarting, kAwaiting, kDone };
  void finish(Outcome outcome);
  void fail(const term::Term& reason);

  node::Node& node_;
  term::Pid owner_;
  std::string target_;
  std::string fun_;
  std::vector<term::Term> args_;
  Done done_;
  uint64_t timeout_ms_;
  static constexpr const char* kSupervisor = "Elixir.Chat.TaskSupervisor";
  State state_ = State::kIdle;
  term::Ref tag_;  // the monitor of the supervisor, as gen:call's tag
  term::Term request_;
  term::Ref monitor_;
  std::optional<term::Pid> task_;
  uint64_t timer_ = 0;
};

}  // namespace chat::service
