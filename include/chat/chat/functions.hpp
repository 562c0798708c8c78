// The functions a peer may run on this node, through Task.Supervisor (Chat.send_message) or
// through :rpc/:erpc (SPAWN_REQUEST). A small explicit table; anything else is undef, as
// calling a missing function is on a BEAM.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/chat/task_call.hpp"
#include "chat/kernel/kernel.hpp"
#include "chat/node/node.hpp"
#include "chat/term/term.hpp"

namespace chat::service {


// How a call ended, in the classes of an Erlang exception: it returned a value, raised an
// error (the running process then exits with {Reason, Stacktrace}), or exited (as Task.await
// does when a call-back fails; the process exits with that reason as it is).
struct Outcome {
  enum class Kind { kReturn, kError, kExit };
  Kind kind = Kind::kReturn;
  term::Term value;  // the return value, the error reason (undef, badarg…) or the exit reason
  term::Term stack;  // [{M, F, Args, []}] for an error
  [[nodiscard]] bool ok() const { return kind == Kind::kReturn; }
};

// What a function needs from the process running it.
class FunctionHost {
 public:
  virtual ~FunctionHost() = default;
  virtual node::Node& host_node() = 0;
  // The node's global and pg, when it runs them.
  virtual kernel::Kernel* kernel() = 0;
  virtual const term::Pid& host_pid() const = 0;
  // Prints chardata as one line the way IO.puts would from this process, then continues (a
  // group leader gets it as one binary, with its newline). False if it is not chardata (IO.puts
  // raises badarg); `then` is not called then.
  virtual bool puts(const term::Term& chardata, std::function<void()> then) = 0;
  // Runs Chat.send_message-style calls to other nodes (moebi's call-back).
  virtual void call_remote(const std::string& target, const std::string& fun, std::vector<term::Term> args,
                           TaskCall::Done done) = 0;
  // net_kernel:connect_node/1: done(true) once connected, done(false) if it cannot be.
  virtual void connect_node(const std::string& node_name, std::function<void(bool)> done) = 0;
};

// Runs Module:Function(Args) for `host`; `done` is called exactly once (possibly later, when
// the function waits on another node).
void run_function(FunctionHost& host, const std::string& module, const std::string& function,
                  const std::vector<term::Term>& args, std::function<void(Outcome)> done);

// {Reason, [{M, F, Args, []}]} — the exit reason of a process that raised Reason in M:F(Args).
term::Term error_exit_reason(const std::string& module, const std::string& function,
                             const std::vector<term::Term>& args, const term::Term& reason);

}  // namespace chat::service
