// The client commands: send and ping act like a user's iex session (a named node that calls
// the target), gen-secret prints a cookie.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "chat/app/app.hpp"
#include "chat/kernel/gen.hpp"
#include "chat/chat/task_call.hpp"
#include "chat/dist/random.hpp"

namespace chat::app {

using term::atom;
using term::Term;

namespace {

constexpr int kExitCallFailed = 1;
constexpr int kExitUnreachable = 2;

// Explains a failed call in one line, with the connection error when there was one.
int report_failure(App& app, const std::string& target, const Term& reason) {
  const std::string conn = app.connect_error(target);
  if (!conn.empty() || reason.is_atom("noconnection")) {
    std::fprintf(stderr, "chat-node: cannot reach %s: %s\n", target.c_str(),
                 conn.empty() ? "connection lost" : conn.c_str());
    return kExitUnreachable;
  }
  std::fprintf(stderr, "chat-node: call to %s exited: %s\n", target.c_str(), term::to_elixir_string(reason).c_str());
  return kExitCallFailed;
}

// Chat.send_message(target, message) from this node, seed variant: the caller's own
// Chat.TaskSupervisor (served by App) receives moebi's "chicken?" meanwhile.
class SendClient final : public node::Process {
 public:
  explicit SendClient(App& app) : app_(app) { trap_exit_ = true; }
  void started() override {
    const auto& o = app_.options();
    call_ = std::make_unique<service::TaskCall>(
        node(), self(), o.target, "receive_message", std::vector<Term>{term::binary(o.message), atom(node().name())},
        [this](service::TaskCall::Outcome outcome) {
          if (outcome.ok) {
            // What iex would show as the value of the call.
            app_.out().line(term::to_elixir_string(outcome.value));
            app_.stop(0);
          } else {
            app_.stop(report_failure(app_, app_.options().target, outcome.value));
          }
        },
        o.timeout_ms);
    call_->start();
  }
  void receive(Term&& msg) override {
    if (call_) call_->handle(msg);
  }

 private:
  App& app_;
  std::unique_ptr<service::TaskCall> call_;
};

// net_adm:ping/1: {is_auth, Node} to the target's net_kernel; yes means pong.
class PingClient final : public node::Process {
 public:
  explicit PingClient(App& app) : app_(app) {}
  void started() override {
    const auto& target = app_.options().target;
    tag_ = node().make_ref();
    monitor_node(target);
    send_named("net_kernel", target,
               service::gen_call_message(self(), tag_, term::tuple({atom("is_auth"), atom(node().name())})));
    after(app_.options().timeout_ms, [this] { done(false); });
  }
  void receive(Term&& msg) override {
    const auto* t = msg.tuple(2);
    if (t == nullptr) return;
    if ((*t)[0] == Term{tag_}) done((*t)[1].is_atom("yes"));
    if ((*t)[0].is_atom("nodedown")) done(false);
  }

 private:
  void done(bool pong) {
    if (finished_) return;
    finished_ = true;
    app_.out().line(pong ? "pong" : "pang");
    if (!pong) {
      const auto why = app_.connect_error(app_.options().target);
      if (!why.empty()) std::fprintf(stderr, "chat-node: %s\n", why.c_str());
    }
    app_.stop(pong ? 0 : 1);
  }

  App& app_;
  term::Ref tag_;
  bool finished_ = false;
};

}  // namespace

int run_send(const Options& options) {
  App app(options);
  return app.run([](App& a) { a.node().spawn(std::make_unique<SendClient>(a)); });
}

int run_ping(const Options& options) {
  App app(options);
  return app.run([](App& a) { a.node().spawn(std::make_unique<PingClient>(a)); });
}

int run_gen_secret(const Options& options) {
  if (options.secret_length < 32 || options.secret_length > 255) {
    std::fprintf(stderr, "chat-node: a cookie needs 32 to 255 characters\n");
    return 2;
  }
  const auto cookie = dist::make_cookie(options.secret_length);
  if (!cookie) {
    std::fprintf(stderr, "chat-node: no random bytes available\n");
    return 1;
  }
  std::printf("%s\n", cookie->c_str());
  return 0;
}

}  // namespace chat::app
