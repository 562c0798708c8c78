// The web dyno's part in the group chat:
//   - POST /broadcast {"text": …}: Chat.broadcast(text) from this node, to every member of
//     the pg group Chat (every chat node's inbox, this one's included);
//   - the process registered globally as 'Elixir.Chat.Web' (and locally under the same
//     name): any node of the cluster can write on the web page with
//     :global.send(Chat.Web, "text"). A second web dyno's registration clashes; global keeps
//     one, and the other keeps trying, so the name comes back if the first goes.
#include <spdlog/spdlog.h>

#include "chat/app/app.hpp"
#include "chat/app/web_group.hpp"

namespace chat::app {

using term::atom;
using term::Term;

namespace {

constexpr uint64_t kRegisterRetryMs = 5000;

}  // namespace

void WebInbox::started() { try_register(); }

void WebInbox::try_register() {
  auto* g = ctx_.kernel != nullptr ? ctx_.kernel->global_server() : nullptr;
  if (g == nullptr) {
    after(kRegisterRetryMs, [this] { try_register(); });
    return;
  }
  auto& n = node();
  const term::Pid me = self();
  g->register_name(atom(kWebName), me, [this, &n, me](bool yes) {
    if (!n.alive(me)) return;  // gone before global answered
    if (yes) {
      spdlog::info("global name {} registered", kWebName);
      return;
    }
    after(kRegisterRetryMs, [this] { try_register(); });
  });
}

void WebInbox::receive(Term&& msg) {
  // Printed like the inbox's lines: the feed shows every printed line.
  if (auto text = service::puts_text(msg)) ctx_.out.line(*text);
}

namespace {

// Chat.broadcast/1 on behalf of a web user.
class WebBroadcast final : public node::Process {
 public:
  WebBroadcast(App& app, std::string text, std::function<void(http::Response)> answer)
      : app_(app), text_(std::move(text)), answer_(std::move(answer)) {}
  void started() override {
    auto* pg = app_.kernel().pg;
    size_t n = 0;
    if (pg != nullptr) {
      for (const auto& pid : pg->members(service::chat_group())) {
        send(pid, term::binary(text_));
        ++n;
      }
    }
    app_.feed().publish("out", "everyone", text_);
    answer_(http::Response{200, "application/json", "{\"ok\":true,\"members\":" + std::to_string(n) + "}\n"});
    exit(atom("normal"));
  }
  void receive(Term&& /*msg*/) override {}

 private:
  App& app_;
  std::string text_;
  std::function<void(http::Response)> answer_;
};

}  // namespace

void post_broadcast(App& app, const std::string& text, http::Exchange& ex) {
  auto answer = ex.defer();
  if (!answer) return;  // this client already waits on too many answers (it has been told 503)
  app.node().spawn(std::make_unique<WebBroadcast>(app, text, std::move(answer)));
  app.node().drain();
}

}  // namespace chat::app
