#include "chat/app/metrics.hpp"

#include <array>
#include <map>

#include "chat/app/app.hpp"
#include "chat/app/prometheus.hpp"
#include "chat/dist/constants.hpp"

namespace chat::app {

namespace pm = prometheus;

// BEAM nodes always offer fragments, which a chat-node does not (the atom cache header both
// offer); a chat-node offers exactly its own flag set (without DFLAG_PUBLISHED when hidden);
// anything else is some other implementation.
const char* peer_kind(uint64_t offered_flags) {
  if ((offered_flags & dist::flag::kFragments) != 0) return "beam";
  return (offered_flags | dist::flag::kPublished) == dist::flag::kOurs ? "cpp" : "other";
}

std::string metrics_text(App& app) {
  pm::Writer w;
  const auto counter = [&w](const char* name, const char* help, uint64_t v) {
    w.family(name, pm::Type::kCounter, help);
    w.sample(v);
  };
  const auto gauge = [&w](const char* name, const char* help, uint64_t v) {
    w.family(name, pm::Type::kGauge, help);
    w.sample(v);
  };

  w.family("chat_node_info", pm::Type::kGauge, "This node: its name, and that it is a chat-node (always 1).");
  w.sample(uint64_t{1}, {{"node", app.node().name()}, {"kind", "cpp"}});
  w.family("chat_uptime_seconds", pm::Type::kGauge, "Seconds since the node started.");
  w.sample(static_cast<double>(app.uptime_ms()) / 1000.0);

  // What /status.json shows.
  const auto& chat = app.chat();
  const auto node = app.node().counters();
  counter("chat_messages_printed_total", "Chat messages this node printed on its stdout.", chat.out.lines());
  counter("chat_inbox_messages_total", "Messages sent to the registered Chat process.", chat.stats.inbox_messages);
  counter("chat_dist_messages_in_total", "Messages delivered to local processes from peers.", node.messages_in);
  counter("chat_dist_messages_out_total", "Messages sent to peers.", node.messages_out);
  counter("chat_dist_malformed_total", "Control messages from peers this node could not make sense of.",
          node.malformed);
  counter("chat_tasks_started_total", "Tasks started under Chat.TaskSupervisor.", chat.stats.tasks_started);
  counter("chat_tasks_failed_total", "Tasks that ended with an error.", chat.stats.tasks_failed);
  gauge("chat_processes", "Processes alive on this node.", node.processes);
  gauge("chat_links", "Links held by local processes.", node.links);
  gauge("chat_monitors", "Monitors alive, in both directions.", node.monitors);
  counter("chat_http_requests_total", "Requests served on the web port ($PORT).", app.http_requests());
  w.family("chat_supervisor_restarts_total", pm::Type::kCounter, "Children a supervisor restarted.");
  w.sample(chat.supervisor.restarts, {{"supervisor", "chat_sup"}});
  w.sample(app.kernel().stats.restarts, {{"supervisor", "kernel_sup"}});

  // The loop's own stalls: every input waits while a turn runs.
  const auto& turns = app.runtime().turn_stats();
  std::array<double, net::TurnStats::kBoundsUs.size()> bounds{};
  for (size_t i = 0; i < bounds.size(); ++i) bounds[i] = static_cast<double>(net::TurnStats::kBoundsUs[i]) / 1e6;
  w.family("chat_loop_turn_seconds", pm::Type::kHistogram,
           "How long the event loop's turns took, waiting in poll left out; a long turn delays every peer.");
  w.histogram(bounds, turns.counts, static_cast<double>(turns.busy_ns) / 1e9);
  w.family("chat_loop_longest_turn_seconds", pm::Type::kGauge, "The longest turn of the event loop since start.");
  w.sample(static_cast<double>(turns.longest_ns) / 1e9);
  if (const auto cpu = net::Runtime::thread_cpu()) {
    w.family("chat_loop_cpu_seconds_total", pm::Type::kCounter, "Time the event loop's thread spent on a CPU.");
    w.sample(static_cast<double>(cpu->run_ns) / 1e9);
    w.family("chat_loop_cpu_wait_seconds_total", pm::Type::kCounter,
             "Time the event loop's thread was ready to run but waited for a CPU (the machine's other load).");
    w.sample(static_cast<double>(cpu->wait_ns) / 1e9);
  }

  // Connections now, by the kind of peer and who connected.
  const auto& net = app.network();
  std::map<std::pair<std::string, std::string>, uint64_t> up;
  for (const char* kind : {"beam", "cpp", "other"}) {
    for (const char* dir : {"incoming", "outgoing"}) up[{kind, dir}] = 0;
  }
  size_t up_total = 0;
  for (const auto& p : net.peer_status()) {
    ++up[{peer_kind(p.flags), p.incoming ? "incoming" : "outgoing"}];
    ++up_total;
  }
  w.family("chat_dist_connections", pm::Type::kGauge, "Distribution connections that are up, by peer kind and direction.");
  for (const auto& [key, n] : up) w.sample(n, {{"kind", key.first}, {"direction", key.second}});
  gauge("chat_dist_connections_pending", "Connections being set up (DNS, EPMD, connect, handshake).",
        net.connections() > up_total ? net.connections() - up_total : 0);

  const auto& c = net.counters();
  counter("chat_dist_accepted_total", "Connections the distribution listener accepted.", c.accepted);
  counter("chat_dist_initiated_total", "Connections this node started.", c.initiated);
  w.family("chat_dist_handshakes_total", pm::Type::kCounter,
           "Handshakes that ended, by result: ok, or why they failed.");
  for (size_t i = 0; i < net::kHandshakeResults; ++i) {
    w.sample(c.handshakes[i], {{"result", net::label(static_cast<net::HandshakeResult>(i))}});
  }
  w.family("chat_dist_connect_failures_total", pm::Type::kCounter,
           "Outgoing connections that failed before their handshake, by cause.");
  for (size_t i = 0; i < net::kConnectFailures; ++i) {
    w.sample(c.connect_failures[i], {{"cause", net::label(static_cast<net::ConnectFailure>(i))}});
  }
  counter("chat_dist_disconnects_total", "Connections that were up and closed.", c.disconnects);
  counter("chat_dist_in_bytes_total", "Bytes read from peers (handshakes, frames and ticks).", c.bytes_in);
  counter("chat_dist_out_bytes_total", "Bytes queued for peers (handshakes, frames and ticks).", c.bytes_out);
  counter("chat_dist_demonitor_holds_total",
          "Answers to a gen:call after which the socket did not wake the node for the caller's demonitor alone.",
          c.demonitor_holds);
  counter("chat_dist_demonitor_holds_expired_total",
          "Of those, holds that ended by their 10 ms timer rather than by the caller's next frame.",
          c.demonitor_holds_expired);
  counter("chat_dist_demonitor_holds_deep_total",
          "Of those, holds that also covered the monitor of the caller's next gen:call.", c.demonitor_holds_deep);
  gauge("chat_dist_queued_bytes", "Bytes queued for peers and not yet written to their sockets.", net.queued_bytes());

  // Where the node stands against its limits (README, Robustness; /status.json's "limits").
  const auto& out = app.out();
  gauge("chat_stdout_queued_bytes", "Chat lines waiting for stdout, in bytes (--stdout-buffer-mb).", out.queued_bytes());
  gauge("chat_stdout_full", "1 while stdout is behind and the peers that print are paused.", out.full() ? 1 : 0);
  counter("chat_stdout_fell_behind_total", "Times stdout fell behind past --stdout-buffer-mb.", out.times_full());
  counter("chat_stdout_dropped_lines_total", "Chat lines dropped past 4x --stdout-buffer-mb.", out.dropped_lines());
  gauge("chat_dist_paused_peers", "Connections whose reading is paused until stdout catches up.", net.paused_peers());
  gauge("chat_dist_connecting_queued_bytes", "Bytes queued for connections still being set up (--max-queue-mb).",
        net.connecting_bytes());
  gauge("chat_io_wait_bytes", "Lines sent to peers' group leaders whose calls wait for the io_reply (--max-io-wait-mb).",
        app.chat().io_waits.bytes);
  counter("chat_io_wait_went_on_total", "Calls that sent their line and went on without waiting, past --max-io-wait-mb.",
          app.chat().io_waits.went_on);
  counter("chat_io_wait_dropped_lines_total",
          "Lines to a peer's group leader not sent: its connection stayed busy (past --max-io-wait-mb, or for 5 s).",
          app.chat().io_waits.dropped);
  counter("chat_peer_warnings_left_out_total", "Log lines a peer could cause at will, left out past 20 a second.",
          app.node().peer_warnings().left_out());
  if (const auto* h = app.http()) {
    const auto st = h->stats();
    gauge("chat_http_open_connections", "Open connections on the web port (--http-max-connections).", st.open);
    gauge("chat_http_event_streams", "Open /events streams on the web port.", st.streams);
    counter("chat_http_refused_total", "Web connections refused at the connection limits.", st.refused);
    counter("chat_http_evicted_total", "Web connections closed to make room while still sending their request.",
            st.evicted);
    counter("chat_http_slow_dropped_total", "Event streams and answers dropped because their client did not read.",
            st.slow_dropped);
  }

  const auto* d = app.discovery();
  counter("chat_discovery_rounds_total", "Completed DNS discovery rounds.", d ? d->rounds() : 0);
  w.family("chat_discovery_errors_total", pm::Type::kCounter,
           "DNS names that did not resolve, and EPMDs that did not answer, in discovery rounds.");
  w.sample(d ? d->dns_errors() : 0, {{"stage", "dns"}});
  w.sample(d ? d->epmd_errors() : 0, {{"stage", "epmd"}});
  gauge("chat_discovery_listed_nodes", "Nodes the last discovery round listed.", d ? d->listed().size() : 0);
  return w.take();
}

http::Server::Handler metrics_handler(App& app) {
  return [&app](const http::Request& req, http::Exchange& ex) {
    if (req.method != "GET" && req.method != "HEAD") {
      ex.respond(http::Response{405, "text/plain; charset=utf-8", "method not allowed\n"});
    } else if (req.path == "/metrics") {
      ex.respond(http::Response{200, pm::kContentType, metrics_text(app)});
    } else if (req.path == "/health") {
      ex.respond(http::Response{200, "text/plain; charset=utf-8", "ok\n"});
    } else {
      ex.respond(http::Response{404, "text/plain; charset=utf-8", "not found\n"});
    }
  };
}

}  // namespace chat::app
