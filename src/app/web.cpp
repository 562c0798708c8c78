// The web dyno's HTTP routes. Everything shown comes from the node's own state; names that
// came from the network are escaped (JSON strings, HTML text).
// The dyno is public: with CHAT_WEB_TOKEN set, every route but /health (the platform's check)
// wants the token, as HTTP Basic (any user name, the token as password: what a browser asks
// for, and then sends with every request of the page, its event stream included) or as a
// Bearer token (scripts). A POST from another site's page is refused (Origin), and a message
// goes only to a node of the cluster: connected, or listed by discovery.

#include <iterator>
#include <map>
#include <optional>
#include <string>

#include "chat/app/app.hpp"
#include "chat/app/metrics.hpp"
#include "chat/app/prometheus.hpp"
#include "chat/app/web_group.hpp"
#include "chat/app/web_input.hpp"
#include "chat/chat/task_call.hpp"
#include "web_page.hpp"

namespace chat::app {

namespace {

// Where the node stands against its limits (README, Robustness).
std::string limits_json(App& app) {
  const auto& out = app.out();
  std::string s = "{\"stdout\":{\"queued_bytes\":" + std::to_string(out.queued_bytes()) +
                  ",\"full\":" + (out.full() ? "true" : "false") + ",\"times_full\":" + std::to_string(out.times_full()) +
                  ",\"dropped_lines\":" + std::to_string(out.dropped_lines()) + "}" +
                  ",\"paused_peers\":" + std::to_string(app.network().paused_peers()) +
                  ",\"connecting_bytes\":" + std::to_string(app.network().connecting_bytes()) +
                  ",\"peer_warnings_left_out\":" + std::to_string(app.node().peer_warnings().left_out()) +
                  ",\"io_wait\":{\"bytes\":" + std::to_string(app.chat().io_waits.bytes) +
                  ",\"went_on\":" + std::to_string(app.chat().io_waits.went_on) +
                  ",\"dropped\":" + std::to_string(app.chat().io_waits.dropped) + "}";
  if (const auto* h = app.http()) {
    const auto st = h->stats();
    s += ",\"http\":{\"open\":" + std::to_string(st.open) + ",\"streams\":" + std::to_string(st.streams) +
         ",\"refused\":" + std::to_string(st.refused) + ",\"evicted\":" + std::to_string(st.evicted) +
         ",\"slow_dropped\":" + std::to_string(st.slow_dropped) + "}";
  }
  return s + "}";
}

// The event loop's turns (chat_loop_turn_seconds in /metrics, in full).
std::string loop_json(App& app) {
  const auto& t = app.runtime().turn_stats();
  std::string cpu;
  if (const auto c = net::Runtime::thread_cpu()) {
    cpu = ",\"cpu_ms\":" + std::to_string(c->run_ns / 1'000'000) +
          ",\"waited_for_cpu_ms\":" + std::to_string(c->wait_ns / 1'000'000);
  }
  return "{\"turns\":" + std::to_string(t.turns) + ",\"busy_ms\":" + std::to_string(t.busy_ns / 1'000'000) +
         ",\"longest_turn_us\":" + std::to_string(t.longest_ns / 1000) +
         ",\"turns_over_1ms\":" + std::to_string(t.longer_than_us(1'000)) +
         ",\"turns_over_10ms\":" + std::to_string(t.longer_than_us(10'000)) +
         ",\"turns_over_100ms\":" + std::to_string(t.longer_than_us(100'000)) + cpu + "}";
}

std::string status_json(App& app) {
  const auto& c = app.chat();
  const auto counters = app.node().counters();
  const uint64_t now = app.runtime().now_ms();
  std::string nodes = "[";
  std::string peers = "[";
  bool first = true;
  for (const auto& p : app.network().peer_status()) {
    if (!first) {
      nodes += ",";
      peers += ",";
    }
    first = false;
    nodes += http::json_string(p.name);
    peers += "{\"name\":" + http::json_string(p.name) + ",\"kind\":\"" + peer_kind(p.flags) +
             "\",\"connected_for_s\":" + std::to_string((now - p.up_since_ms) / 1000) +
             ",\"direction\":\"" + (p.incoming ? "incoming" : "outgoing") + "\"}";
  }
  nodes += "]";
  peers += "]";
  std::string discovered = "[";
  if (const auto* d = app.discovery()) {
    bool f = true;
    for (const auto& n : d->listed()) {
      discovered += (f ? "" : ",") + http::json_string(n);
      f = false;
    }
  }
  discovered += "]";
  return "{\"node\":" + http::json_string(app.node().name()) + ",\"kind\":\"chat-node\"" + ",\"nodes\":" + nodes +
         ",\"peers\":" + peers + ",\"discovered\":" + discovered +
         ",\"uptime_s\":" + std::to_string(app.uptime_ms() / 1000) +
         ",\"messages\":{\"printed\":" + std::to_string(c.out.lines()) +
         ",\"inbox\":" + std::to_string(c.stats.inbox_messages) +
         ",\"dist_in\":" + std::to_string(counters.messages_in) +
         ",\"dist_out\":" + std::to_string(counters.messages_out) + "}" +
         ",\"tasks\":{\"started\":" + std::to_string(c.stats.tasks_started) +
         ",\"failed\":" + std::to_string(c.stats.tasks_failed) + "}" +
         ",\"processes\":" + std::to_string(counters.processes) + ",\"links\":" + std::to_string(counters.links) +
         ",\"monitors\":" + std::to_string(counters.monitors) +
         ",\"restarts\":{\"chat_sup\":" + std::to_string(c.supervisor.restarts) +
         ",\"kernel_sup\":" + std::to_string(app.kernel().stats.restarts) + "}" +
         ",\"http_requests\":" + std::to_string(app.http_requests()) + ",\"loop\":" + loop_json(app) +
         ",\"limits\":" + limits_json(app) + "}\n";
}

// GET /nodes: this node and its connected peers.
std::string nodes_json(App& app) {
  const uint64_t now = app.runtime().now_ms();
  std::string out = "{\"self\":" + http::json_string(app.node().name()) + ",\"nodes\":[";
  out += "{\"name\":" + http::json_string(app.node().name()) + ",\"kind\":\"cpp\",\"self\":true,\"connected_for_s\":null}";
  for (const auto& p : app.network().peer_status()) {
    out += ",{\"name\":" + http::json_string(p.name) + ",\"kind\":\"" + peer_kind(p.flags) +
           "\",\"self\":false,\"connected_for_s\":" + std::to_string((now - p.up_since_ms) / 1000) + "}";
  }
  return out + "]}\n";
}

// What a web user is shown of a term another node returned: that node picks its size.
constexpr size_t kMaxShownChars = 16U << 10U;

// Chat.send_message(to, text) on behalf of a web user; the HTTP answer waits for the result.
class WebSend final : public node::Process {
 public:
  WebSend(App& app, std::string to, std::string text, std::function<void(http::Response)> answer)
      : app_(app), to_(std::move(to)), text_(std::move(text)), answer_(std::move(answer)) {
    trap_exit_ = true;
  }
  void started() override {
    app_.feed().publish("out", to_, text_);
    call_ = std::make_unique<service::TaskCall>(
        node(), self(), to_, "receive_message", std::vector<term::Term>{term::binary(text_), term::atom(node().name())},
        [this](service::TaskCall::Outcome o) {
          if (o.ok) {
            const std::string result = term::to_elixir_string(o.value, kMaxShownChars);
            app_.feed().publish("result", to_, result);
            answer_(http::Response{200, "application/json", "{\"ok\":true,\"result\":" + http::json_string(result) + "}\n"});
          } else {
            std::string why = app_.connect_error(to_);
            const bool unreachable = !why.empty() || o.value.is_atom("noconnection");
            if (why.empty()) why = unreachable ? "connection lost" : term::to_elixir_string(o.value, kMaxShownChars);
            app_.feed().publish("error", to_, why);
            answer_(http::Response{unreachable ? 502 : 500, "application/json",
                                   "{\"ok\":false,\"error\":" + http::json_string(why) + "}\n"});
          }
          exit(term::atom("normal"));
        });
    call_->start();
  }
  void receive(term::Term&& msg) override {
    if (call_) call_->handle(msg);
  }

 private:
  App& app_;
  std::string to_;
  std::string text_;
  std::function<void(http::Response)> answer_;
  std::unique_ptr<service::TaskCall> call_;
};

std::string header(const http::Request& req, const std::string& name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? std::string{} : it->second;
}

// A browser names the page a request comes from; another site's page may not post here
// (with Basic auth the browser would otherwise lend it the user's credentials).
bool same_origin(const http::Request& req) {
  const std::string origin = header(req, "origin");
  if (origin.empty()) return true;  // not a browser, or a same-origin GET
  const auto scheme_end = origin.find("://");
  const std::string host = scheme_end == std::string::npos ? origin : origin.substr(scheme_end + 3);
  return host == header(req, "host");
}

// A node of this cluster: itself, connected, or listed by discovery. Anything else would make
// the public web dyno connect to a host of the poster's choosing.
bool in_cluster(App& app, const std::string& name) {
  if (name == app.node().name()) return true;
  for (const auto& p : app.network().peers()) {
    if (p == name) return true;
  }
  const auto* d = app.discovery();
  return d != nullptr && d->listed().contains(name);
}

void post_message(App& app, const http::Request& req, http::Exchange& ex) {
  auto fields = parse_flat_json(req.body);
  if (!fields || !fields->contains("to") || !fields->contains("text")) {
    ex.respond(http::Response{400, "application/json", "{\"ok\":false,\"error\":\"expected {\\\"to\\\": node, \\\"text\\\": message}\"}\n"});
    return;
  }
  const std::string& to = (*fields)["to"];
  const std::string& text = (*fields)["text"];
  if (!valid_node_name(to) || text.empty() || text.size() > 4096) {
    ex.respond(http::Response{422, "application/json", "{\"ok\":false,\"error\":\"invalid node name or message\"}\n"});
    return;
  }
  if (!in_cluster(app, to)) {
    ex.respond(http::Response{403, "application/json",
                              "{\"ok\":false,\"error\":\"not a node of this cluster (neither connected nor discovered)\"}\n"});
    return;
  }
  auto answer = ex.defer();
  if (!answer) return;  // this client already waits on too many answers
  app.node().spawn(std::make_unique<WebSend>(app, to, text, std::move(answer)));
  app.node().drain();
}

}  // namespace

void Feed::publish(const std::string& type, const std::string& peer, const std::string& text) {
  ++seq_;
  const std::string shown = text.size() > kMaxText ? text.substr(0, kMaxText) + "…" : text;
  const std::string data = "{\"type\":" + http::json_string(type) + ",\"node\":" + http::json_string(peer) +
                           ",\"text\":" + http::json_string(shown) + ",\"seq\":" + std::to_string(seq_) + "}";
  std::string event = "event: chat\ndata: " + data + "\n\n";
  std::erase_if(streams_, [](const auto& s) { return !s->open(); });
  for (const auto& s : streams_) s->send(event);
  history_.push_back(std::move(event));
  if (history_.size() > kHistory) history_.pop_front();
}

void Feed::add(std::shared_ptr<http::EventStream> s) {
  if (!s) return;
  s->send("retry: 2000\n\n");
  size_t bytes = 0;
  auto first = history_.end();
  while (first != history_.begin() && bytes + std::prev(first)->size() <= kHistoryBytes) {
    --first;
    bytes += first->size();
  }
  for (auto e = first; e != history_.end(); ++e) s->send(*e);
  streams_.push_back(std::move(s));
}

http::Server::Handler web_handler(App& app) {
  return [&app](const http::Request& req, http::Exchange& ex) {
    const bool get = req.method == "GET" || req.method == "HEAD";
    const auto only = [&](bool ok) {
      if (!ok) ex.respond(http::Response{405, "text/plain; charset=utf-8", "method not allowed\n"});
      return ok;
    };
    if (req.path == "/health") {
      if (only(get)) ex.respond(http::Response{200, "text/plain; charset=utf-8", "ok\n"});
      return;
    }
    if (!authorized(req, app.options().web_token)) {
      ex.respond(http::Response{401, "text/plain; charset=utf-8", "this chat-node wants its access token\n",
                                {{"WWW-Authenticate", "Basic realm=\"chat-node\", charset=\"UTF-8\""}}});
      return;
    }
    if (req.method == "POST" && !same_origin(req)) {
      ex.respond(http::Response{403, "text/plain; charset=utf-8", "cross-site request refused\n"});
      return;
    }
    if (req.path == "/status.json") {
      if (only(get)) ex.respond(http::Response{200, "application/json", status_json(app)});
    } else if (req.path == "/metrics") {
      if (only(get)) ex.respond(http::Response{200, prometheus::kContentType, metrics_text(app)});
    } else if (req.path == "/nodes") {
      if (only(get)) ex.respond(http::Response{200, "application/json", nodes_json(app)});
    } else if (req.path == "/messages") {
      if (only(req.method == "POST")) post_message(app, req, ex);
    } else if (req.path == "/broadcast") {
      if (!only(req.method == "POST")) return;
      auto fields = parse_flat_json(req.body);
      const std::string text = fields && fields->contains("text") ? (*fields)["text"] : "";
      if (text.empty() || text.size() > 4096) {
        ex.respond(http::Response{422, "application/json", "{\"ok\":false,\"error\":\"expected {\\\"text\\\": message}\"}\n"});
        return;
      }
      post_broadcast(app, text, ex);
    } else if (req.path == "/events") {
      if (only(get)) app.feed().add(ex.stream());
    } else if (req.path == "/" || req.path == "/index.html") {
      if (only(get)) ex.respond(http::Response{200, "text/html; charset=utf-8", std::string(kIndexHtml)});
    } else {
      ex.respond(http::Response{404, "text/plain; charset=utf-8", "not found\n"});
    }
  };
}

}  // namespace chat::app
