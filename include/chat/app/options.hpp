// Command line of chat-node (Boost.Program_options). Throws std::invalid_argument with a
// message meant for the user on anything it cannot accept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chat/net/spin_policy.hpp"

namespace chat::app {

enum class Command { kRun, kSend, kPing, kBroadcast, kBlast, kGenSecret, kTlsCa, kTlsCert, kHelp };

struct Options {
  Command command = Command::kRun;
  std::string node_name;  // alive@host, resolved from --name or --sname
  std::string cookie;
  uint32_t net_ticktime = 60;
  std::string log_level = "info";
  uint16_t epmd_port = 4369;
  uint16_t dist_port = 0;
  uint64_t timeout_ms = 5000;
  size_t max_frame_mb = 128;
  size_t max_queue_mb = 256;
  std::string target;  // send, ping
  std::string message;  // send
  size_t secret_length = 64;
  std::optional<uint16_t> http_port;          // --port, else $PORT: the web dyno's listener
  std::optional<uint16_t> metrics_port;       // --metrics-port, else $CHAT_METRICS_PORT: /metrics
  std::vector<std::string> discover;          // --discover, else $CHAT_DISCOVERY, else Heroku's
  uint32_t discovery_interval_s = 5;
  std::string web_token;                      // $CHAT_WEB_TOKEN: the page and the API want it
  size_t http_max_connections = 1000;         // open HTTP connections (also kept under a share of the fd limit)
  size_t http_max_per_client = 32;            // event streams and pending answers per client address
  bool http_behind_proxy = false;             // --http-behind-proxy, or $DYNO set (Heroku's router)
  net::SpinPolicy::BusyWait busy_wait = net::SpinPolicy::BusyWait::kMedium;  // --busy-wait, else $CHAT_BUSY_WAIT
  size_t stdout_buffer_mb = 16;               // chat lines waiting for stdout before printing peers pause
  size_t max_connect_attempts = 64;           // outgoing connections being set up at once
  size_t max_io_wait_mb = 64;                 // lines whose calls wait for a peer's io_reply
  uint64_t blast_count = 100'000;             // blast: messages to send
  size_t blast_size = 64;                     // blast: bytes per message
  uint64_t blast_window = 0;                  // blast: messages between syncs (0: by size)
  // TLS distribution (src/app/tls_setup.cpp): --proto-dist, --ssl-dist-optfile, else
  // $CHAT_SSL_DIST_OPTFILE, else certificates in CHAT_TLS_* variables.
  std::string proto_dist;                     // "inet_tcp", "inet_tls", or "" (not given)
  std::string ssl_dist_optfile;
  // tls-ca / tls-cert
  std::vector<std::string> cert_hosts;        // tls-cert HOST... (or NAME@HOST)
  std::string out_dir;                        // --out
  std::string ca_dir;                         // --ca: ca.pem and ca.key (else CHAT_TLS_*)
  uint32_t cert_days = 0;                     // --days (0: the command's default)
  uint32_t backdate_days = 0;                 // --backdate-days: notBefore this far back
  bool cert_optional = false;                 // --if-configured: no CA, no output, exit 0
  bool hidden = false;  // --hidden (run), or a one-off command unless --visible
  std::string help;
};

Options parse_options(int argc, char** argv);

// Cookie: --cookie, else $ERLANG_COOKIE, else ~/.erlang.cookie (owner-only, as erl insists).
std::string resolve_cookie(const std::optional<std::string>& flag);
// --sname: alive@<this machine's short host name>, as erl -sname does.
std::string short_node_name(const std::string& alive);
bool valid_node_name(const std::string& name);
// Discovery queries from the environment: $CHAT_DISCOVERY (comma-separated), else one
// <type>.$HEROKU_DNS_APP_NAME per Procfile process type.
std::vector<std::string> default_discovery();
std::vector<std::string> split_list(const std::string& s);

}  // namespace chat::app
