// GET /metrics: the node's counters in the Prometheus text format, on the web dyno's port and,
// with --metrics-port (or $CHAT_METRICS_PORT), on a port of its own on any node. Everything
// comes from counters the layers keep anyway (node, chat, net, discovery, http); reading them
// changes nothing.
#pragma once

#include <cstdint>
#include <string>

#include "chat/http/server.hpp"

namespace chat::app {

class App;

// "beam", "cpp" or "other", from the flags a peer offered in its handshake.
const char* peer_kind(uint64_t offered_flags);

std::string metrics_text(App& app);

// The --metrics-port listener: /metrics and /health only.
http::Server::Handler metrics_handler(App& app);

}  // namespace chat::app
