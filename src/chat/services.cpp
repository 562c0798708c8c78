#include "chat/chat/services.hpp"

#include <spdlog/spdlog.h>

#include "chat/chat/gen.hpp"

namespace chat::service {

using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

void start_services(node::Node& node, ChatContext& ctx) {
  node.spawn(std::make_unique<NetKernel>(), "net_kernel");
  node.spawn(std::make_unique<TaskSupervisor>(ctx), "Elixir.Chat.TaskSupervisor");
  node.spawn(std::make_unique<Inbox>(ctx), "Elixir.Chat");
}

std::optional<std::string> puts_text(const Term& t) {
  if (const auto* b = t.get<term::Binary>()) return b->bytes;
  if (const auto* a = t.get<term::Atom>()) return a->name;  // String.Chars for atoms
  if (const auto* i = t.get<int64_t>()) return std::to_string(*i);
  if (const auto* l = t.get<term::List>()) {
    // chardata: code points and binaries, nested
    if (!l->tail.empty()) return std::nullopt;
    std::string out;
    for (const auto& item : l->items) {
      if (const auto* c = item.get<int64_t>()) {
        const auto cp = static_cast<uint32_t>(*c);
        if (*c < 0 || cp > 0x10ffff) return std::nullopt;
        if (cp < 0x80) {
          out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
          out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
          out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else if (cp < 0x10000) {
          out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
          out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
          out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        } else {
          out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
          out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
          out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
          out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
        }
      } else if (item.get<term::Binary>() || item.get<term::List>()) {
        auto inner = puts_text(item);
        if (!inner) return std::nullopt;
        out += *inner;
      } else {
        return std::nullopt;
      }
    }
    return out;
  }
  return std::nullopt;
}

// --- Task.Supervisor ---------------------------------------------------------------------

void TaskSupervisor::receive(const Term& msg) {
  if (const auto* e = msg.tuple(3); e != nullptr && (*e)[0].is_atom("EXIT")) {
    if (const auto* pid = (*e)[1].get<Pid>()) children_.erase({pid->num, pid->serial});
    return;
  }
  auto call = parse_gen_call(msg);
  if (!call) return;
  const auto& req = call->request;
  if (const auto* r = req.tuple(4); r != nullptr && (*r)[0].is_atom("start_task")) {
    // {start_task, [OwnerInfo, monitor | nomonitor], Restart, Shutdown}: only monitored
    // tasks (async) send their result back; start_child tasks (nomonitor) do not.
    const auto* args = (*r)[1].get<term::List>();
    const bool reply = args == nullptr || args->items.size() < 2 || !args->items[1].is_atom("nomonitor");
    const Pid child = node().spawn(std::make_unique<ChatTask>(ctx_, reply));
    link(child);  // as a DynamicSupervisor links its children
    children_.insert({child.num, child.serial});
    ++ctx_.stats.tasks_started;
    gen_reply(node(), self(), *call, tuple({atom("ok"), child}));
    return;
  }
  if (req.is_atom("which_children")) {
    std::vector<Term> items;
    for (const auto& pid : children_pids()) {
      items.push_back(tuple({atom("undefined"), pid, atom("worker"), term::list({atom("Elixir.Task.Supervised")})}));
    }
    gen_reply(node(), self(), *call, term::list(std::move(items)));
    return;
  }
  if (req.is_atom("count_children")) {
    const auto n = static_cast<int64_t>(children_.size());
    gen_reply(node(), self(), *call,
              term::list({tuple({atom("specs"), Term{int64_t{1}}}), tuple({atom("active"), Term{n}}),
                          tuple({atom("supervisors"), Term{int64_t{0}}}), tuple({atom("workers"), Term{n}})}));
    return;
  }
  spdlog::debug("Chat.TaskSupervisor: unsupported call {}", term::to_erlang_string(req));
}

std::vector<Pid> TaskSupervisor::children_pids() const {
  std::vector<Pid> out;
  for (const auto& [num, serial] : children_) out.push_back(Pid{self().node, num, serial, self().creation});
  return out;
}

// --- the task ----------------------------------------------------------------------------

void ChatTask::started() {
  start_timer_ = after(5000, [this] { exit(atom("timeout")); });
}

void ChatTask::receive(const Term& msg) {
  if (call_ && call_->handle(msg)) return;
  if (running_) return;
  // {Owner, Ref, ReplyTo, Callers, {Module, Fun, Args}}
  const auto* t = msg.tuple(5);
  if (t == nullptr) return;
  const auto* owner = (*t)[0].get<Pid>();
  const auto* mfa = (*t)[4].tuple(3);
  if (owner == nullptr || mfa == nullptr) return;
  running_ = true;
  cancel_timer(start_timer_);
  owner_ = *owner;
  ref_ = (*t)[1];
  const auto* mod = (*mfa)[0].get<term::Atom>();
  const auto* fun = (*mfa)[1].get<term::Atom>();
  const auto* args = (*mfa)[2].get<term::List>();
  if (mod != nullptr && fun != nullptr && args != nullptr && args->tail.empty() && mod->name == "Elixir.Chat") {
    run(fun->name, args->items);
    return;
  }
  // apply/3 of anything else fails as undef; Task.Supervised exits with {undef, Stacktrace}.
  ++ctx_.stats.tasks_failed;
  exit(tuple({atom("undef"), term::list({tuple({(*mfa)[0], (*mfa)[1], (*mfa)[2], term::nil()})})}));
}

void ChatTask::run(const std::string& fun, const std::vector<Term>& args) {
  const auto undef = [&] {
    ++ctx_.stats.tasks_failed;
    spdlog::warn("task {}: Chat.{}/{} is undefined", term::to_erlang_string(self()), fun, args.size());
    exit(tuple({atom("undef"),
                term::list({tuple({atom("Elixir.Chat"), atom(fun), term::list(args), term::nil()})})}));
  };
  const auto print = [&](const Term& message) {
    auto text = puts_text(message);
    if (!text) {
      ++ctx_.stats.tasks_failed;
      exit(tuple({atom("badarg"), term::list({tuple({atom("Elixir.IO"), atom("puts"), term::list({message}),
                                                     term::nil()})})}));
      return false;
    }
    ctx_.out.line(*text);
    return true;
  };
  const std::string& me = node().name();

  if (fun == "receive_message" && args.size() == 2) {
    // Seed app: print, and on moebi call the sender back with "chicken?".
    if (!print(args[0])) return;
    const auto* from = args[1].get<term::Atom>();
    if (ChatContext::is_moebi(me) && from != nullptr) {
      call_back(from->name, "receive_message", {term::binary("chicken?"), atom(me)});
    } else {
      finish(atom("nil"));
    }
  } else if (fun == "receive_message" && args.size() == 1) {
    // Lesson app: IO.puts/1 returns :ok.
    if (print(args[0])) finish(atom("ok"));
  } else if (fun == "receive_message_for_moebi" && args.size() == 2) {
    if (!print(args[0])) return;
    const auto* from = args[1].get<term::Atom>();
    if (from == nullptr) return undef();
    call_back(from->name, "receive_message", {term::binary("chicken?")});
  } else if (fun == "send_message" && args.size() == 2) {
    // Chat.send_message/2 run here: this node sends on the caller's behalf (seed variant).
    const auto* to = args[0].get<term::Atom>();
    if (to == nullptr) return undef();
    call_back(to->name, "receive_message", {args[1], atom(me)});
  } else {
    undef();
  }
}

void ChatTask::call_back(const std::string& target, const std::string& fun, std::vector<Term> args) {
  call_ = std::make_unique<TaskCall>(node(), self(), target, fun, std::move(args), [this](TaskCall::Outcome o) {
    if (o.ok) {
      finish(o.value);
    } else {
      ++ctx_.stats.tasks_failed;
      exit(o.value);  // Task.await exits the caller: here, this task
    }
  });
  call_->start();
}

void ChatTask::finish(const Term& result) {
  // Without DFLAG_ALIAS the ReplyTo alias cannot be used; the owner's pid reaches the same
  // receive ({Ref, Result} is matched by Ref).
  if (reply_ && owner_) send(*owner_, tuple({ref_, result}));
  exit(atom("normal"));
}

// --- net_kernel and the inbox --------------------------------------------------------------

void NetKernel::receive(const Term& msg) {
  auto call = parse_gen_call(msg);
  if (!call) return;
  // net_adm:ping/1 asks {is_auth, Node}; being connected already proved the cookie.
  if (const auto* r = call->request.tuple(2); r != nullptr && (*r)[0].is_atom("is_auth")) {
    gen_reply(node(), self(), *call, atom("yes"));
  }
}

void Inbox::receive(const Term& msg) {
  if (const auto* b = msg.get<term::Binary>()) {
    ++ctx_.stats.inbox_messages;
    ctx_.out.line(b->bytes);
    return;
  }
  if (auto call = parse_gen_call(msg); call && call->request.is_atom("count")) {
    gen_reply(node(), self(), *call, Term{static_cast<int64_t>(ctx_.stats.inbox_messages)});
  }
}

}  // namespace chat::service
