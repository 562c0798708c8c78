// chat-node broadcast MESSAGE: what a BEAM user does by hand,
//   for pid <- :pg.get_members(Chat), do: send(pid, "hi all")
// from a one-off node: it asks a node of the cluster for the group's members (pg's table is
// on every member node; the one-off is hidden and runs no pg of its own), sends the message to
// each, and waits until every member's node has taken it (a net_kernel call after the
// sends, on the same connection, comes back only after them).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "chat/app/app.hpp"
#include "chat/kernel/co.hpp"
#include "chat/net/epmd_client.hpp"

namespace chat::app {

using term::atom;
using term::Term;
using term::tuple;

namespace {

class BroadcastClient final : public kernel::CoProcess {
 public:
  explicit BroadcastClient(App& app) : app_(app) {}

 private:
  kernel::Co<> main() override {
    const auto& o = app_.options();
    std::string via = o.target;
    if (via.empty()) {
      kernel::Co<std::string> finding = find_node();
      via = co_await finding;
    }
    if (via.empty()) {
      std::fprintf(stderr, "chat-node: no cluster node found (give --via NODE, or --discover NAME)\n");
      app_.stop(2);
      co_return;
    }
    // :rpc.call(Via, :pg, :get_members, [Chat]) through rex, as rpc's old call form does.
    Term rex = tuple({atom("rex"), atom(via)});
    Term request = tuple({atom("call"), atom("pg"), atom("get_members"), term::list({atom("Elixir.Chat")}), self()});
    kernel::Co<CallResult> rpc = call(rex, request, o.timeout_ms);
    const auto members = co_await rpc;
    const auto* list = members.ok ? members.value.get<term::List>() : nullptr;
    if (list == nullptr) {
      const std::string why = app_.connect_error(via);
      std::fprintf(stderr, "chat-node: cannot get the members of Chat from %s: %s\n", via.c_str(),
                   why.empty() ? term::to_elixir_string(members.value).c_str() : why.c_str());
      app_.stop(2);
      co_return;
    }
    std::set<std::string> nodes;
    size_t sent = 0;
    for (const auto& m : list->items) {
      const auto* pid = m.get<term::Pid>();
      if (pid == nullptr) continue;
      send(*pid, term::binary(o.message));
      nodes.insert(pid->node);
      ++sent;
    }
    // One round trip per node: its answer comes after our messages on the same connection.
    int failed = 0;
    for (const auto& n : nodes) {
      Term kernel = tuple({atom("net_kernel"), atom(n)});
      Term is_auth = tuple({atom("is_auth"), atom(node().name())});
      kernel::Co<CallResult> ping = call(kernel, is_auth, o.timeout_ms);
      const auto r = co_await ping;
      if (!r.ok) {
        ++failed;
        const std::string why = app_.connect_error(n);
        std::fprintf(stderr, "chat-node: %s did not confirm: %s\n", n.c_str(),
                     why.empty() ? term::to_elixir_string(r.value).c_str() : why.c_str());
      }
    }
    app_.out().line("sent to " + std::to_string(sent) + " members on " + std::to_string(nodes.size()) + " nodes");
    app_.stop(failed == 0 ? 0 : 1);
  }

  // A node of the cluster: the first discovery lists, else one registered with this machine's
  // EPMD (a cluster on one machine).
  kernel::Co<std::string> find_node() {
    const uint64_t deadline = node().now_ms() + app_.options().timeout_ms;
    if (!app_.options().discover.empty()) {
      while (node().now_ms() < deadline) {
        if (const auto* d = app_.discovery(); d != nullptr && !d->listed().empty()) co_return *d->listed().begin();
        Receive pause = sleep(100);
        co_await pause;
      }
      co_return std::string{};
    }
    const term::Pid me = self();
    auto& n = node();
    net::EpmdRequest::start(app_.runtime().loop(), app_.network().epmd_address(), epmd::names_request(), nullptr,
                            [&n, me](const std::string& reply, const std::string& /*error*/) {
                              std::vector<Term> names;
                              for (const auto& [name, port] : epmd::parse_names_reply(reply)) names.push_back(atom(name));
                              n.send(me, me, tuple({atom("epmd_names"), term::list(std::move(names))}));
                              n.drain();
                            });
    Receive names = receive_match([](const Term& m) {
      const auto* t = m.tuple(2);
      return t != nullptr && (*t)[0].is_atom("epmd_names");
    });
    const auto reply = co_await names;
    const std::string self_alive = node().name().substr(0, node().name().find('@'));
    const std::string host = "127.0.0.1";
    std::vector<std::string> found;
    for (const auto& nm : (*reply->tuple(2))[1].get<term::List>()->items) {
      const auto& alive = nm.get<term::Atom>()->name;
      if (alive != self_alive) found.push_back(alive + "@" + host);
    }
    std::sort(found.begin(), found.end());
    co_return found.empty() ? std::string{} : found.front();
  }

  App& app_;
};

}  // namespace

int run_broadcast(const Options& options) {
  App app(options);
  return app.run([](App& a) { a.node().spawn(std::make_unique<BroadcastClient>(a)); });
}

}  // namespace chat::app
