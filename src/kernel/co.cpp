#include "chat/kernel/co.hpp"

#include <algorithm>

#include "chat/kernel/gen.hpp"
#include "chat/node/node.hpp"

namespace chat::kernel {

using term::atom;
using term::Term;
using term::tuple;

namespace {

Co<> run_then_exit(Co<> body, std::function<void()> done) {
  co_await body;  // a parameter: a named object of this frame
  done();
}

}  // namespace

void CoProcess::started() {
  Co<> body = main();
  std::function<void()> done = [this] { exit(atom("normal")); };
  main_ = run_then_exit(std::move(body), std::move(done));
  main_.start();
}

void CoProcess::receive(Term&& msg) {
  if (waiter_ != nullptr && waiter_->match_(msg)) {
    Receive* w = std::exchange(waiter_, nullptr);
    if (timer_ != 0) cancel_timer(std::exchange(timer_, 0));
    w->result_ = std::move(msg);
    w->waiting_.resume();
    return;
  }
  mailbox_.push_back(std::move(msg));
}

bool CoProcess::Receive::await_ready() {
  result_ = p_.take(match_);
  return result_.has_value() || timeout_ == 0;
}

void CoProcess::Receive::await_suspend(std::coroutine_handle<> h) {
  waiting_ = h;
  p_.waiter_ = this;
  if (timeout_ == kInfinity) return;
  p_.timer_ = p_.after(timeout_, [p = &p_] {
    p->timer_ = 0;
    Receive* w = std::exchange(p->waiter_, nullptr);
    if (w != nullptr) w->waiting_.resume();  // result_ stays empty: the timeout
  });
}

std::optional<Term> CoProcess::take(const Match& m) {
  auto it = std::find_if(mailbox_.begin(), mailbox_.end(), m);
  if (it == mailbox_.end()) return std::nullopt;
  Term msg = std::move(*it);
  mailbox_.erase(it);
  return msg;
}

void CoProcess::flush(const Match& m) { std::erase_if(mailbox_, m); }

namespace {

// {Ref, Reply} or {'DOWN', Ref, process, _, Reason}
bool answers(const Term& msg, const Term& ref) {
  if (const auto* t = msg.tuple(2)) return (*t)[0] == ref;
  if (const auto* d = msg.tuple(5)) return (*d)[0].is_atom("DOWN") && (*d)[1] == ref;
  return false;
}

bool is_down(const Term& msg, const Term& ref) {
  const auto* d = msg.tuple(5);
  return d != nullptr && (*d)[0].is_atom("DOWN") && (*d)[1] == ref;
}

// gen:call's exit reason for a monitor that fired.
Term down_reason(const Term& down, const Term& dest) {
  const Term& reason = (*down.tuple(5))[4];
  if (!reason.is_atom("noconnection")) return reason;
  std::string node;
  if (const auto* pid = dest.get<term::Pid>()) node = pid->node;
  if (const auto* t = dest.tuple(2)) {
    if (const auto* a = (*t)[1].get<term::Atom>()) node = a->name;
  }
  return tuple({atom("nodedown"), atom(node)});
}

}  // namespace

void CoProcess::cast(const std::string& name, const std::string& node_name, Term msg) {
  send_named(name, node_name, tuple({atom("$gen_cast"), std::move(msg)}));
}

Co<CoProcess::CallResult> CoProcess::call(Term dest, Term request, uint64_t timeout_ms) {
  const term::Ref mref = monitor(dest);
  const Term ref{mref};
  Term msg = gen_call_message(self(), ref, std::move(request));
  if (const auto* pid = dest.get<term::Pid>()) {
    send(*pid, std::move(msg));
  } else if (const auto* t = dest.tuple(2); t != nullptr && (*t)[0].get<term::Atom>() && (*t)[1].get<term::Atom>()) {
    send_named((*t)[0].get<term::Atom>()->name, (*t)[1].get<term::Atom>()->name, std::move(msg));
  }
  Receive wait = receive_match([ref](const Term& m) { return answers(m, ref); }, timeout_ms);
  auto answer = co_await wait;
  if (!answer) {
    demonitor(mref);
    flush([ref](const Term& m) { return is_down(m, ref); });
    co_return CallResult{false, atom("timeout")};
  }
  if (is_down(*answer, ref)) co_return CallResult{false, down_reason(*answer, dest)};
  demonitor(mref);
  flush([ref](const Term& m) { return is_down(m, ref); });
  co_return CallResult{true, std::move((*answer->get<term::Tuple>()).items[1])};
}

Co<CoProcess::MultiResult> CoProcess::multi_call(std::vector<std::string> nodes, std::string name, Term request) {
  std::vector<std::pair<std::string, Term>> pending;  // node, monitor ref
  for (const auto& n : nodes) {
    const term::Ref mref = monitor(tuple({atom(name), atom(n)}));
    send_named(name, n, gen_call_message(self(), mref, request));
    pending.emplace_back(n, mref);
  }
  MultiResult result;
  while (!pending.empty()) {
    Receive wait = receive_match([&pending](const Term& m) {
      return std::any_of(pending.begin(), pending.end(), [&m](const auto& p) { return answers(m, p.second); });
    });
    auto answer = co_await wait;
    auto it = std::find_if(pending.begin(), pending.end(), [&](const auto& p) { return answers(*answer, p.second); });
    const std::string node = it->first;
    const Term ref = it->second;
    pending.erase(it);
    if (is_down(*answer, ref)) {
      result.bad_nodes.push_back(node);
      continue;
    }
    demonitor(*ref.get<term::Ref>());
    flush([ref](const Term& m) { return is_down(m, ref); });
    result.replies.emplace_back(node, std::move((*answer->get<term::Tuple>()).items[1]));
  }
  co_return result;
}

}  // namespace chat::kernel
