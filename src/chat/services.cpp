#include "chat/term/show.hpp"
#include "chat/chat/services.hpp"

#include <spdlog/spdlog.h>

#include "chat/kernel/gen.hpp"

namespace chat::service {

using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

Term chat_group() { return atom("Elixir.Chat"); }

Pid start_services(node::Node& node, ChatContext& ctx, std::vector<kernel::ChildSpec> extra) {
  node.set_spawn_handler([&ctx](const std::string& m, const std::string& f, const std::vector<Term>& a) {
    return std::make_unique<SpawnedCall>(ctx, m, f, a);
  });
  std::vector<kernel::ChildSpec> children{
      {"rex", [&ctx] { return std::make_unique<Rex>(ctx); }},
      {"Elixir.Chat.TaskSupervisor", [&ctx] { return std::make_unique<TaskSupervisor>(ctx); }},
      {"Elixir.Chat", [&ctx] { return std::make_unique<Inbox>(ctx); }},
  };
  for (auto& e : extra) children.push_back(std::move(e));
  return node.spawn(std::make_unique<kernel::Supervisor>("chat_sup", std::move(children), ctx.supervisor));
}

std::optional<std::string> puts_text(const Term& t) {
  if (const auto* b = t.get<term::Binary>()) {
    std::string text;
    text.reserve(b->bytes().size() + 1);
    text.append(b->bytes());
    return text;
  }
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

void TaskSupervisor::receive(Term&& msg) {
  if (const auto* e = msg.tuple(3); e != nullptr && (*e)[0].is_atom("EXIT")) {
    if (const auto* pid = (*e)[1].get<Pid>()) children_.erase({pid->num, pid->serial});
    return;
  }
  auto call = parse_gen_call(std::move(msg));
  if (!call) return;
  const auto& req = call->request;
  if (const auto* r = req.tuple(4); r != nullptr && (*r)[0].is_atom("start_task")) {
    // {start_task, [OwnerInfo, monitor | nomonitor], Restart, Shutdown}: only monitored
    // tasks (async) send their result back; start_child tasks (nomonitor) do not.
    const auto* args = (*r)[1].get<term::List>();
    const bool reply = args == nullptr || args->items.size() < 2 || !args->items[1].is_atom("nomonitor");
    // OwnerInfo is {Node, PidOrName, Pid}; the task watches Pid until it gets its work.
    std::optional<Pid> owner;
    if (args != nullptr && !args->items.empty()) {
      if (const auto* info = args->items[0].tuple(3)) {
        if (const auto* p = (*info)[2].get<Pid>()) owner = *p;
      }
    }
    const Pid child = node().spawn(std::make_unique<ChatTask>(ctx_, reply, owner));
    link(child);  // as a DynamicSupervisor links its children
    children_.insert({child.num, child.serial});
    ++ctx_.stats.tasks_started;
    gen_reply(node(), self(), std::move(*call), tuple({atom("ok"), child}));
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
  spdlog::debug("Chat.TaskSupervisor: unsupported call {}", term::show(req));
}

std::vector<Pid> TaskSupervisor::children_pids() const {
  std::vector<Pid> out;
  for (const auto& [num, serial] : children_) out.push_back(Pid{self().node, num, serial, self().creation});
  return out;
}

// --- processes that run table functions ----------------------------------------------------

void FunctionProcess::receive(Term&& msg) {
  if (call_ && call_->handle(msg)) return;
  if (connected_) {
    if (const auto* d = msg.tuple(2); d != nullptr && (*d)[0].is_atom("nodedown") && (*d)[1].is_atom(connecting_)) {
      std::exchange(connected_, nullptr)(false);
      return;
    }
  }
  if (after_io_) {
    // {io_reply, ReplyAs, Reply}
    if (const auto* r = msg.tuple(3); r != nullptr && (*r)[0].is_atom("io_reply") && (*r)[1] == io_tag_) {
      cancel_timer(io_timer_);
      io_done();
      auto next = std::exchange(after_io_, nullptr);
      next();
      return;
    }
  }
  other(std::move(msg));
}

void FunctionProcess::connect_node(const std::string& node_name, std::function<void(bool)> done) {
  if (node_name == node().name() || node().transport().flags(node_name) != 0) {
    done(true);
    return;
  }
  connecting_ = node_name;
  connected_ = std::move(done);
  monitor_node(node_name);  // connects; a connection that cannot be made sends nodedown
  connect_poll(node().now_ms() + 10000);
}

void FunctionProcess::connect_poll(uint64_t deadline_ms) {
  // The handshake's end has no message of its own for a hidden peer: look every 20 ms.
  if (!connected_) return;
  if (node().transport().flags(connecting_) != 0) {
    demonitor_node(connecting_);
    std::exchange(connected_, nullptr)(true);
    return;
  }
  if (node().now_ms() >= deadline_ms) {
    std::exchange(connected_, nullptr)(false);
    return;
  }
  after(20, [this, deadline_ms] { connect_poll(deadline_ms); });
}

bool FunctionProcess::puts(const Term& chardata, std::function<void()> then) {
  // Copying a line of megabytes, and faulting in its fresh pages, takes the loop tens of ms. A
  // BEAM makes that copy on the calling process's scheduler, not on the one serving everyone
  // else: here it goes to the workers, as long as they hold at most kCopyingMax bytes.
  constexpr size_t kCopyAside = 256U << 10U;
  constexpr uint64_t kCopyingMax = uint64_t{64} << 20U;
  const auto* bin = chardata.get<term::Binary>();
  const size_t size = bin != nullptr ? bin->bytes().size() : 0;
  // A line print() would drop is not worth copying: the calls already waiting, with the
  // lines being copied, fill --max-io-wait-mb, and the group leader's connection is busy.
  if (size >= kCopyAside && group_leader() &&
      ctx_.io_waits.bytes + ctx_.copying_bytes + size + 1 > ctx_.io_waits.limit && gl_busy()) {
    drop_line(size + 1);
    then();
    return true;
  }
  if (size >= kCopyAside && ctx_.workers != nullptr && ctx_.copying_bytes + size <= kCopyingMax) {
    ctx_.copying_bytes += size;
    copying_ = size;
    // Allocated here, filled there: the block comes from the loop's heap, which is trimmed once
    // the burst is over (a worker thread's own arena would keep it), and its pages are first
    // touched by the copy.
    auto line = std::make_shared<std::string>();
    line->reserve(size + 1);
    ctx_.workers->post([line, held = *bin] { line->append(held.bytes()); },
        // Only this process knows the context: it may be gone (the node with it) by now.
        [this, alive = std::weak_ptr<bool>(alive_), line, then = std::move(then)]() mutable {
          if (!alive.lock()) return;
          copy_done();
          print(std::move(*line), std::move(then));
        });
    return true;
  }
  auto text = puts_text(chardata);
  if (!text) return false;
  print(std::move(*text), std::move(then));
  return true;
}

void FunctionProcess::print(std::string line, std::function<void()> then) {
  if (!group_leader()) {
    ctx_.out.line(line);
    then();
    return;
  }
  line.push_back('\n');
  const uint64_t size = line.size();
  auto& waits = ctx_.io_waits;
  if (waits.bytes + size > waits.limit) {
    if (gl_busy()) {
      drop_line(size);
    } else {
      ++waits.went_on;
      node().peer_warn("calls waiting for io_reply hold {} bytes (--max-io-wait-mb); {} goes on without waiting",
                       waits.bytes, term::show(self()));
      send_io_request(std::move(line));
    }
    then();
    return;
  }
  io_bytes_ = size;
  waits.bytes += size;
  after_io_ = std::move(then);
  // A group leader that never answers, or whose connection stays busy, must not hold the call
  // forever.
  io_timer_ = after(5000, [this] {
    if (!held_line_.empty()) {
      ++ctx_.io_waits.dropped;
      node().peer_warn("{} stayed busy for 5 s: {} drops a line of {} bytes", group_leader()->node,
                       term::show(self()), held_line_.size());
      std::string().swap(held_line_);
    }
    io_done();
    if (auto next = std::exchange(after_io_, nullptr)) next();
  });
  if (!gl_busy()) {
    send_io_request(std::move(line));
    return;
  }
  // As a BEAM process sending on a busy connection is suspended: the line waits here, counted
  // in io_waits, rather than in the connection's queue, until the queue has room.
  held_line_ = std::move(line);
  if (!resume_) {
    resume_ = std::make_shared<std::function<void()>>([this] {
      if (held_line_.empty()) return;
      if (gl_busy()) {
        node().transport().when_not_busy(group_leader()->node, resume_);
        return;
      }
      send_io_request(std::exchange(held_line_, {}));
    });
  }
  node().transport().when_not_busy(group_leader()->node, resume_);
}

void FunctionProcess::drop_line(uint64_t size) {
  auto& waits = ctx_.io_waits;
  ++waits.dropped;
  node().peer_warn("calls waiting for io_reply hold {} bytes (--max-io-wait-mb) and {} is busy: {} drops a line of {} "
                   "bytes",
                   waits.bytes + ctx_.copying_bytes, group_leader()->node, term::show(self()), size);
}

bool FunctionProcess::gl_busy() {
  const std::string& peer = group_leader()->node;
  return peer != node().name() && node().transport().busy(peer);
}

void FunctionProcess::send_io_request(std::string line) {
  // The io protocol: {io_request, From, ReplyAs, {put_chars, unicode, Chars}}, Chars one
  // binary as a BEAM's io module sends it (io:io_request/2). A large one goes out uncopied.
  io_tag_ = node().make_ref();
  send(*group_leader(), tuple({atom("io_request"), self(), io_tag_,
                               tuple({atom("put_chars"), atom("unicode"), term::binary(std::move(line))})}));
}

void FunctionProcess::copy_done() {
  ctx_.copying_bytes -= std::exchange(copying_, 0);
}

void FunctionProcess::io_done() {
  ctx_.io_waits.bytes -= std::exchange(io_bytes_, 0);
}

void FunctionProcess::call_remote(const std::string& target, const std::string& fun, std::vector<Term> args,
                                  TaskCall::Done done) {
  call_ = std::make_unique<TaskCall>(node(), self(), target, fun, std::move(args), std::move(done));
  call_->start();
}

void ChatTask::started() {
  if (reply_ && owner_) owner_monitor_ = monitor(*owner_);
  start_timer_ = after(5000, [this] { exit(atom("timeout")); });
}

void ChatTask::other(Term&& msg) {
  if (const auto* d = msg.tuple(5); d != nullptr && (*d)[0].is_atom("DOWN") && (*d)[1] == Term{owner_monitor_}) {
    exit(tuple({atom("shutdown"), (*d)[4]}));
    return;
  }
  if (running_) return;
  // {Owner, Ref, ReplyTo, Callers, {Module, Fun, Args}}
  auto* t = msg.get<term::Tuple>();
  if (t == nullptr || t->items.size() != 5) return;
  auto& items = t->items;
  const auto* owner = items[0].get<Pid>();
  auto* mfa = items[4].get<term::Tuple>();
  if (owner == nullptr || mfa == nullptr || mfa->items.size() != 3) return;
  running_ = true;
  cancel_timer(start_timer_);
  if (!owner_monitor_.ids.empty()) demonitor(owner_monitor_);
  owner_ = *owner;
  ref_ = std::move(items[1]);
  reply_to_ = std::move(items[2]);
  auto& f = mfa->items;
  auto* mod = f[0].get<term::Atom>();
  auto* fun = f[1].get<term::Atom>();
  auto* args = f[2].get<term::List>();
  if (mod == nullptr || fun == nullptr || args == nullptr || !args->tail.empty()) {
    // apply/3 with a bad module, function or argument list raises badarg.
    ++ctx_.stats.tasks_failed;
    exit(tuple({atom("badarg"), term::list({tuple({atom("erlang"), atom("apply"), term::list({f[0], f[1], f[2]}), term::nil()})})}));
    return;
  }
  module_ = std::move(mod->name);
  fun_ = std::move(fun->name);
  args_ = std::move(args->items);
  run_function(*this, module_, fun_, args_, [this](const Outcome& o) { finish(o); });
}

void ChatTask::finish(const Outcome& o) {
  if (!o.ok()) {
    ++ctx_.stats.tasks_failed;
    node().peer_warn("task {} running {}.{}/{} crashed: {}", term::show(self()), module_, fun_, args_.size(),
                     term::show(o.value));
    // Task.Supervised re-raises: an error becomes the exit reason {Reason, Stacktrace}; an
    // exit (Task.await's, when a call-back failed) keeps its reason.
    exit(o.kind == Outcome::Kind::kError ? tuple({o.value, o.stack}) : o.value);
    return;
  }
  if (reply_ && owner_) {
    Term msg = tuple({std::move(ref_), o.value});
    const auto* alias_ref = reply_to_.get<term::Ref>();
    if (const auto* pid = reply_to_.get<Pid>()) {
      send(*pid, std::move(msg));
    } else if (alias_ref != nullptr && node().alias_reachable(*alias_ref)) {
      node().send_alias(self(), *alias_ref, std::move(msg));
    } else {
      // A peer without aliases still matches {Ref, Result} in the owner's mailbox.
      send(*owner_, std::move(msg));
    }
  }
  exit(atom("normal"));
}

// --- net_kernel and the inbox --------------------------------------------------------------

void Inbox::started() {
  if (ctx_.kernel != nullptr && ctx_.kernel->pg != nullptr) ctx_.kernel->pg->join(chat_group(), self());
}

// handle_info(message, count) when is_binary(message): counted, and printed.
void Inbox::count_line() {
  ++ctx_.stats.inbox_messages;
  ++count_;
}

bool Inbox::take_binary(std::string_view line) {
  count_line();
  ctx_.out.line(line);
  return true;
}

void Inbox::receive(Term&& msg) {
  if (auto* b = msg.get<term::Binary>()) {
    count_line();
    if (b->shared()) {
      ctx_.out.line(b->shared());  // written from the frame it arrived in
    } else {
      ctx_.out.line(b->bytes());
    }
    return;
  }
  auto call = parse_gen_call(std::move(msg));
  if (!call) return;  // handle_info(_other, count): ignored
  if (call->request.is_atom("count")) {
    gen_reply(node(), self(), std::move(*call), Term{count_});
    return;
  }
  // No handle_call clause matches: the GenServer crashes with function_clause (the caller's
  // monitor carries it to the caller) and its supervisor starts it again.
  const Term from = tuple({call->from, call->tag});
  node().peer_warn("Chat.Inbox: no handle_call clause for {}", term::show(call->request));
  exit(tuple({atom("function_clause"),
              term::list({tuple({atom("Elixir.Chat.Inbox"), atom("handle_call"),
                                 term::list({call->request, from, Term{count_}}), term::nil()})})}));
}

}  // namespace chat::service
