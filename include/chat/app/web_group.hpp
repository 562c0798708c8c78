// The web dyno's part in the group chat (src/app/web_group.cpp).
#pragma once

#include <string>

#include "chat/chat/services.hpp"
#include "chat/http/server.hpp"

namespace chat::app {

class App;

inline constexpr const char* kWebName = "Elixir.Chat.Web";

// Registered locally and globally as 'Elixir.Chat.Web': prints what it receives, so that it
// shows on the web page.
class WebInbox final : public node::Process {
 public:
  explicit WebInbox(service::ChatContext& ctx) : ctx_(ctx) {}
  void started() override;
  void receive(term::Term&& msg) override;

 private:
  void try_register();
  service::ChatContext& ctx_;
};

// POST /broadcast: Chat.broadcast(text) from this node; answers {"ok": true, "members": N}.
void post_broadcast(App& app, const std::string& text, http::Exchange& ex);

}  // namespace chat::app
