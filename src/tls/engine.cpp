#include "chat/tls/engine.hpp"

#include <stdexcept>

namespace chat::tls {

namespace {
const Engine* g_engine = nullptr;
}  // namespace

const Engine* engine() { return g_engine; }
void install(const Engine* e) { g_engine = e; }

DistContexts make_contexts(const DistOptions& options, const std::string& source) {
  if (g_engine == nullptr) throw std::runtime_error("this program has no TLS implementation (chat-node-tls has)");
  // A node both accepts and connects: each side needs its options, as on a BEAM (where a
  // missing side makes every connection of that direction fail).
  if (!options.has_server) throw std::runtime_error(source + ": no {server, [...]} options");
  if (!options.has_client) throw std::runtime_error(source + ": no {client, [...]} options");
  const auto build = [&](const SideOptions& o, Side side) {
    try {
      return g_engine->context(o, side);
    } catch (const std::exception& e) {
      throw std::runtime_error(source + ": " + e.what());
    }
  };
  DistContexts c;
  c.server = build(options.server, Side::kServer);
  c.client = build(options.client, Side::kClient);
  return c;
}

}  // namespace chat::tls
