// The web dyno's HTTP routes. Everything shown comes from the node's own state; names that
// came from the network are escaped (JSON strings, HTML text).
#include <string>

#include "chat/app/app.hpp"
#include "chat/dist/constants.hpp"

namespace chat::app {

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// BEAM nodes always offer the atom cache header and fragments; this node offers neither.
const char* peer_kind(uint64_t flags) {
  constexpr uint64_t kBeamOnly = dist::flag::kDistHdrAtomCache | dist::flag::kFragments;
  return (flags & kBeamOnly) != 0 ? "beam" : "other";
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
         ",\"http_requests\":" + std::to_string(app.http_requests()) + "}\n";
}

std::string status_page(App& app) {
  std::string rows;
  for (const auto& p : app.network().peer_status()) {
    rows += "<li>" + html_escape(p.name) + " <small>(" + peer_kind(p.flags) + ")</small></li>";
  }
  if (rows.empty()) rows = "<li><em>no connected nodes</em></li>";
  return "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
         "content=\"width=device-width, initial-scale=1\"><title>" +
         html_escape(app.node().name()) + "</title></head><body><h1>" + html_escape(app.node().name()) +
         "</h1><p>chat-node, up " + std::to_string(app.uptime_ms() / 1000) + " s</p><h2>Connected nodes</h2><ul>" +
         rows + "</ul><p><a href=\"/status.json\">status.json</a></p></body></html>\n";
}

}  // namespace

http::Server::Handler web_handler(App& app) {
  return [&app](const http::Request& req, http::Exchange& ex) {
    const bool get = req.method == "GET" || req.method == "HEAD";
    if (req.path == "/health" || req.path == "/status.json" || req.path == "/") {
      if (!get) {
        ex.respond(http::Response{405, "text/plain; charset=utf-8", "method not allowed\n"});
        return;
      }
      if (req.path == "/health") {
        ex.respond(http::Response{200, "text/plain; charset=utf-8", "ok\n"});
      } else if (req.path == "/status.json") {
        ex.respond(http::Response{200, "application/json", status_json(app)});
      } else {
        ex.respond(http::Response{200, "text/html; charset=utf-8", status_page(app)});
      }
      return;
    }
    ex.respond(http::Response{404, "text/plain; charset=utf-8", "not found\n"});
  };
}

}  // namespace chat::app
