#include "chat/chat/task_call.hpp"

#include "chat/kernel/gen.hpp"

namespace chat::service {

using kernel::gen_call_message;

using term::atom;
using term::Pid;
using term::Ref;
using term::Term;
using term::tuple;

TaskCall::TaskCall(node::Node& node, Pid owner, std::string target, std::string fun, std::vector<Term> args, Done done,
                   uint64_t timeout_ms)
    : node_(node),
      owner_(std::move(owner)),
      target_(std::move(target)),
      fun_(std::move(fun)),
      args_(std::move(args)),
      done_(std::move(done)),
      timeout_ms_(timeout_ms) {}

TaskCall::~TaskCall() {
  if (timer_) node_.cancel_timer(owner_, timer_);
}

void TaskCall::start() {
  state_ = State::kStarting;
  node_.monitor_node(owner_, target_);
  // gen:call/4 monitors the server first and uses the monitor's ref as the call's tag: a node
  // without the supervisor answers noproc at once, a node that goes answers noconnection.
  const Term sup = tuple({atom(kSupervisor), atom(target_)});
  tag_ = node_.monitor(owner_, sup);
  // get_owner/1 in Task.Supervisor: {node(), registered name or pid, pid}
  Term owner_info = tuple({atom(node_.name()), owner_, owner_});
  request_ = tuple({atom("start_task"), term::list({owner_info, atom("monitor")}), atom("temporary"), atom("nil")});
  node_.send_named(owner_, kSupervisor, target_, gen_call_message(owner_, tag_, request_));
  // GenServer.call(…, :infinity) has no timeout of its own; ours bounds the whole call so a
  // silent peer cannot hold a caller forever.
  timer_ = node_.start_timer(owner_, timeout_ms_, [this] {
    timer_ = 0;
    Term task = task_ ? Term{*task_} : atom("nil");
    fail(tuple({atom("timeout"), tuple({atom("Elixir.Task"), atom("await"),
                                        term::list({task, Term{static_cast<int64_t>(timeout_ms_)}})})}));
  });
}

bool TaskCall::handle(const Term& msg) {
  if (state_ == State::kDone || state_ == State::kIdle) return false;
  if (const auto* t = msg.tuple(2)) {
    const auto& [first, second] = std::pair<const Term&, const Term&>((*t)[0], (*t)[1]);
    if (state_ == State::kStarting && first == Term{tag_}) {
      // {Tag, {ok, TaskPid}} or {Tag, {error, Reason}}
      node_.demonitor(owner_, tag_);
      const auto* reply = second.tuple(2);
      const Pid* pid = reply != nullptr && (*reply)[0].is_atom("ok") ? (*reply)[1].get<Pid>() : nullptr;
      if (pid == nullptr) {
        fail(reply != nullptr ? (*reply)[1] : second);
        return true;
      }
      task_ = *pid;
      node_.link(owner_, *pid);
      monitor_ = node_.monitor(owner_, *pid);
      Term mfa = tuple({atom("Elixir.Chat"), atom(fun_), term::list(args_)});
      node_.send(owner_, *pid, tuple({owner_, monitor_, owner_, term::list({owner_}), std::move(mfa)}));
      state_ = State::kAwaiting;
      return true;
    }
    if (state_ == State::kAwaiting && first == Term{monitor_}) {
      node_.demonitor(owner_, monitor_);
      finish(Outcome{true, second});
      return true;
    }
    if (first.is_atom("nodedown") && second.is_atom(target_)) {
      fail(atom("noconnection"));
      return true;
    }
  }
  if (const auto* d = msg.tuple(5); d != nullptr && (*d)[0].is_atom("DOWN")) {
    if (state_ == State::kStarting && (*d)[1] == Term{tag_}) {
      // GenServer.call's exit: {Reason, {GenServer, :call, [Server, Request, :infinity]}},
      // with {nodedown, Node} for a lost connection.
      Term reason = (*d)[4].is_atom("noconnection") ? tuple({atom("nodedown"), atom(target_)}) : (*d)[4];
      fail(tuple({std::move(reason), tuple({atom("Elixir.GenServer"), atom("call"),
                                            term::list({(*d)[3], request_, atom("infinity")})})}));
      return true;
    }
    if ((*d)[1] == Term{monitor_}) {
      fail((*d)[4]);
      return true;
    }
  }
  if (const auto* e = msg.tuple(3); e != nullptr && task_ && (*e)[0].is_atom("EXIT") && (*e)[1] == Term{*task_}) {
    // Only seen when the owner traps exits; a normal exit after the reply is not a failure.
    if (!(*e)[2].is_atom("normal")) fail((*e)[2]);
    return true;
  }
  return false;
}

void TaskCall::fail(const Term& reason) { finish(Outcome{false, reason}); }

void TaskCall::finish(Outcome outcome) {
  if (state_ == State::kDone) return;
  // The supervisor's monitor is still on if the call ends before start_task was answered
  // (demonitoring twice is harmless).
  if (state_ == State::kStarting) node_.demonitor(owner_, tag_);
  state_ = State::kDone;
  if (timer_) {
    node_.cancel_timer(owner_, timer_);
    timer_ = 0;
  }
  node_.demonitor_node(owner_, target_);
  if (!monitor_.ids.empty()) node_.demonitor(owner_, monitor_);
  auto done = std::move(done_);
  done(std::move(outcome));
}

}  // namespace chat::service
