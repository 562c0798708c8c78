#include "chat/app/options.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace chat::app {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "Usage:\n"
    "  chat-node [run] (--name NAME@HOST | --sname NAME) [--cookie C] [options]\n"
    "  chat-node send TARGET MESSAGE [--name NAME@HOST] [--cookie C] [options]\n"
    "  chat-node ping TARGET [--name NAME@HOST] [--cookie C] [options]\n"
    "  chat-node broadcast MESSAGE [--via NODE] [--name NAME@HOST] [--cookie C] [options]\n"
    "  chat-node blast TARGET [--count N] [--size BYTES] [--window N] [options]\n"
    "  chat-node gen-secret [LENGTH]\n"
    "  chat-node tls-ca --out DIR [--days N]\n"
    "  chat-node tls-cert HOST... --out DIR [--ca DIR] [--days N] [--if-configured]\n"
    "TLS distribution (as erl -proto_dist inet_tls -ssl_dist_optfile FILE): --ssl-dist-optfile FILE\n"
    "(or $CHAT_SSL_DIST_OPTFILE), or the cluster's certificates in the environment:\n"
    "$CHAT_TLS_CACERT (CA certificate PEM) with $CHAT_TLS_CERT and $CHAT_TLS_KEY (this node's PEMs),\n"
    "or with $CHAT_TLS_CA_KEY (the CA's key PEM: a certificate for this node's host is issued at start).\n";

bool is_loopback_host(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

// Heroku sets $PORT on every dyno but routes HTTP to web dynos only; like the Elixir app, only
// a web dyno (or a process outside Heroku, where DYNO is unset) serves it.
bool web_dyno() {
  const char* dyno = std::getenv("DYNO");
  return dyno == nullptr || *dyno == '\0' || std::string(dyno).rfind("web.", 0) == 0;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

std::vector<std::string> default_discovery() {
  if (const char* env = std::getenv("CHAT_DISCOVERY"); env != nullptr && *env != '\0') return split_list(env);
  // On Heroku with spaces-dns-discovery, <type>.<app>.app.localspace lists the dynos of a
  // process type; the types are the Procfile's, read from the app's root when it is there.
  const char* app = std::getenv("HEROKU_DNS_APP_NAME");
  if (app == nullptr || *app == '\0') return {};
  std::vector<std::string> out;
  std::ifstream procfile("Procfile");
  std::string line;
  while (std::getline(procfile, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0 || line[0] == '#') continue;
    out.push_back(line.substr(0, colon) + "." + app);
  }
  if (out.empty()) {
    if (const char* formation = std::getenv("HEROKU_DNS_FORMATION_NAME"); formation != nullptr && *formation != '\0') {
      out.emplace_back(formation);
    }
  }
  return out;
}

bool valid_node_name(const std::string& name) {
  const auto at = name.find('@');
  if (at == std::string::npos || at == 0 || at + 1 >= name.size() || name.size() > 255) return false;
  for (size_t i = 0; i < at; ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  }
  return name.find('@', at + 1) == std::string::npos;
}

std::string short_node_name(const std::string& alive) {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) throw std::invalid_argument("cannot read this machine's host name");
  std::string h(host);
  return alive + "@" + h.substr(0, h.find('.'));
}

std::string resolve_cookie(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  if (const char* env = std::getenv("ERLANG_COOKIE"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  if (home == nullptr) throw std::invalid_argument("no cookie: use --cookie or set ERLANG_COOKIE");
  const std::string path = std::string(home) + "/.erlang.cookie";
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    throw std::invalid_argument("no cookie: use --cookie, set ERLANG_COOKIE, or create " + path);
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw std::invalid_argument("cookie file " + path + " must be accessible by its owner only (chmod 400)");
  }
  std::ifstream in(path);
  std::string cookie;
  std::getline(in, cookie);
  while (!cookie.empty() && (cookie.back() == '\r' || cookie.back() == ' ')) cookie.pop_back();
  if (cookie.empty()) throw std::invalid_argument("cookie file " + path + " is empty");
  return cookie;
}

Options parse_options(int argc, char** argv) {
  Options o;
  std::string busy_wait;  // --busy-wait, read into o.busy_wait once parsed
  po::options_description named("Options");
  named.add_options()("help,h", "show this help")("name", po::value<std::string>(), "long node name, NAME@HOST")(
      "sname", po::value<std::string>(), "short node name; the host is this machine's")(
      "cookie", po::value<std::string>(), "magic cookie (else $ERLANG_COOKIE, else ~/.erlang.cookie)")(
      "net-ticktime", po::value<uint32_t>(&o.net_ticktime)->default_value(60), "seconds before a silent peer is dropped")(
      "log-level", po::value<std::string>(&o.log_level)->default_value("info"), "trace|debug|info|warn|error|off")(
      "dist-port", po::value<uint16_t>(&o.dist_port)->default_value(0), "distribution listen port (0: any)")(
      "timeout", po::value<uint64_t>(&o.timeout_ms)->default_value(5000), "send/ping: milliseconds to wait")(
      "port", po::value<uint16_t>(), "serve HTTP on this port (default: $PORT when set)")(
      "metrics-port", po::value<uint16_t>(),
      "serve GET /metrics (Prometheus) on this port too (default: $CHAT_METRICS_PORT when set)")(
      "max-frame-mb", po::value<size_t>(&o.max_frame_mb)->default_value(128), "largest distribution frame accepted")(
      "max-queue-mb", po::value<size_t>(&o.max_queue_mb)->default_value(256),
      "bytes queued for one peer (also while its connection is being set up) before it is disconnected")(
      "max-connect-attempts", po::value<size_t>(&o.max_connect_attempts)->default_value(64),
      "outgoing connections being set up at once; more fail at once")(
      "max-io-wait-mb", po::value<size_t>(&o.max_io_wait_mb)->default_value(64),
      "lines sent to peers' group leaders whose calls wait for the io_reply; past it calls go on at once")(
      "busy-wait", po::value<std::string>(&busy_wait)->default_value("medium"),
      "none|medium|long: how long the loop polls for input it expects before sleeping, as erl +sbwt "
      "(default: $CHAT_BUSY_WAIT when set); none spends the least CPU, long answers sooner at a few "
      "tenths of a millisecond between requests for several times the CPU")(
      "stdout-buffer-mb", po::value<size_t>(&o.stdout_buffer_mb)->default_value(16),
      "chat lines waiting for stdout before the peers that print are paused (4x that: lines are dropped)")(
      "http-max-connections", po::value<size_t>(&o.http_max_connections)->default_value(1000),
      "open HTTP connections (at most a quarter of the file descriptor limit)")(
      "http-max-per-client", po::value<size_t>(&o.http_max_per_client)->default_value(32),
      "event streams and answers waited for, per client address")(
      "http-behind-proxy", po::bool_switch(&o.http_behind_proxy),
      "count clients by the last X-Forwarded-For entry (the default on Heroku, where $DYNO is set)")(
      "discover", po::value<std::vector<std::string>>()->composing(),
      "DNS name whose A records list peer hosts, or NAME@DNSNAME (repeatable; default: $CHAT_DISCOVERY, "
      "else derived from Heroku's HEROKU_DNS_* variables)")(
      "discovery-interval", po::value<uint32_t>(&o.discovery_interval_s)->default_value(5), "seconds between DNS polls")(
      "count", po::value<uint64_t>(&o.blast_count)->default_value(100000), "blast: messages to send")(
      "size", po::value<size_t>(&o.blast_size)->default_value(64), "blast: bytes per message")(
      "window", po::value<uint64_t>(&o.blast_window)->default_value(0),
      "blast: messages sent before waiting for the target to catch up (0: about 8 MB worth)")(
      "proto-dist", po::value<std::string>(&o.proto_dist), "inet_tcp (default) or inet_tls, as erl -proto_dist")(
      "ssl-dist-optfile", po::value<std::string>(&o.ssl_dist_optfile),
      "the TLS options file a BEAM takes with -ssl_dist_optfile (implies inet_tls)")(
      "out", po::value<std::string>(&o.out_dir), "tls-ca, tls-cert: directory to write to (made private)")(
      "ca", po::value<std::string>(&o.ca_dir), "tls-cert: directory with ca.pem and ca.key (else $CHAT_TLS_CACERT, $CHAT_TLS_CA_KEY)")(
      "days", po::value<uint32_t>(&o.cert_days)->default_value(0), "tls-ca, tls-cert: validity in days")(
      "backdate-days", po::value<uint32_t>(&o.backdate_days)->default_value(0),
      "tls-cert: start the validity this many days ago (with --days 1: an expired certificate, for tests)")(
      "if-configured", po::bool_switch(&o.cert_optional),
      "tls-cert: without a CA configured, write and print nothing and exit 0")(
      "hidden", "run as a hidden node (erl -hidden): not in Node.list(), no global or pg, no mesh")(
      "visible", "send/ping/broadcast/blast: connect as a visible node (they connect hidden by default)")(
      "via", po::value<std::string>(&o.target), "broadcast: the cluster node to ask for the group's members "
      "(default: the first node discovery finds, else a node registered with this machine's EPMD)");
  po::options_description hidden;
  hidden.add_options()("args", po::value<std::vector<std::string>>(), "");
  po::options_description all;
  all.add(named).add(hidden);
  po::positional_options_description pos;
  pos.add("args", -1);

  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw std::invalid_argument(std::string(e.what()) + "\n" + kUsage);
  }
  std::ostringstream help;
  help << kUsage << "\n" << named;
  o.help = help.str();
  if (vm.count("help")) {
    o.command = Command::kHelp;
    return o;
  }

  std::vector<std::string> args;
  if (vm.count("args")) args = vm["args"].as<std::vector<std::string>>();
  const std::string cmd = args.empty() ? "run" : args.front();
  const auto want = [&](size_t n) {
    if (args.size() != n) throw std::invalid_argument("wrong number of arguments for '" + cmd + "'\n" + kUsage);
  };
  if (cmd == "run") {
    o.command = Command::kRun;
    want(args.empty() ? 0 : 1);
  } else if (cmd == "send") {
    o.command = Command::kSend;
    want(3);
    o.target = args[1];
    o.message = args[2];
  } else if (cmd == "blast") {
    o.command = Command::kBlast;
    want(2);
    o.target = args[1];
  } else if (cmd == "broadcast") {
    o.command = Command::kBroadcast;
    want(2);
    o.message = args[1];
  } else if (cmd == "ping") {
    o.command = Command::kPing;
    want(2);
    o.target = args[1];
  } else if (cmd == "tls-ca") {
    o.command = Command::kTlsCa;
    want(1);
    if (o.out_dir.empty()) throw std::invalid_argument("tls-ca needs --out DIR\n" + std::string(kUsage));
    return o;
  } else if (cmd == "tls-cert") {
    o.command = Command::kTlsCert;
    if (args.size() < 2) want(2);
    for (size_t k = 1; k < args.size(); ++k) {
      const auto at = args[k].find('@');
      o.cert_hosts.push_back(at == std::string::npos ? args[k] : args[k].substr(at + 1));
      if (o.cert_hosts.back().empty()) throw std::invalid_argument("tls-cert: empty host in '" + args[k] + "'");
    }
    if (o.out_dir.empty()) throw std::invalid_argument("tls-cert needs --out DIR\n" + std::string(kUsage));
    return o;
  } else if (cmd == "gen-secret") {
    o.command = Command::kGenSecret;
    if (args.size() > 2) want(2);
    if (args.size() == 2) {
      try {
        o.secret_length = std::stoul(args[1]);
      } catch (const std::exception&) {
        throw std::invalid_argument("LENGTH must be a number");
      }
    }
    return o;
  } else {
    throw std::invalid_argument("unknown command '" + cmd + "'\n" + kUsage);
  }
  if (!o.target.empty() && !valid_node_name(o.target)) {
    throw std::invalid_argument("target must be a node name like moebi@127.0.0.1, got '" + o.target + "'");
  }

  if (vm.count("name") && vm.count("sname")) throw std::invalid_argument("give --name or --sname, not both");
  if (vm.count("name")) {
    o.node_name = vm["name"].as<std::string>();
  } else if (vm.count("sname")) {
    o.node_name = short_node_name(vm["sname"].as<std::string>());
  } else if (o.command != Command::kRun) {
    // A client needs a name the target can call back (moebi does); on one machine a
    // throw-away name beside the target's host does.
    const std::string host = o.target.empty() ? "127.0.0.1" : o.target.substr(o.target.find('@') + 1);
    if (!is_loopback_host(host)) throw std::invalid_argument("give --name NAME@YOUR_ADDRESS so " + o.target + " can reach back");
    o.node_name = "cli" + std::to_string(getpid()) + "@" + host;
  } else {
    throw std::invalid_argument("give the node a name: --name NAME@HOST or --sname NAME\n" + std::string(kUsage));
  }
  if (!valid_node_name(o.node_name)) throw std::invalid_argument("invalid node name '" + o.node_name + "'");

  o.cookie = resolve_cookie(vm.count("cookie") ? std::optional<std::string>(vm["cookie"].as<std::string>())
                                               : std::nullopt);
  if (o.cookie.size() > 255) throw std::invalid_argument("cookie longer than 255 characters");
  if (const char* p = std::getenv("ERL_EPMD_PORT"); p != nullptr && *p != '\0') {
    try {
      const auto v = std::stoul(p);
      if (v == 0 || v > 65535) throw std::out_of_range("port");
      o.epmd_port = static_cast<uint16_t>(v);
    } catch (const std::exception&) {
      throw std::invalid_argument(std::string("ERL_EPMD_PORT is not a port number: ") + p);
    }
  }
  if (o.net_ticktime < 4) throw std::invalid_argument("--net-ticktime must be at least 4 seconds");
  if (o.stdout_buffer_mb == 0 || o.stdout_buffer_mb > 4096) throw std::invalid_argument("--stdout-buffer-mb must be 1..4096");
  if (o.max_io_wait_mb > 4096) throw std::invalid_argument("--max-io-wait-mb must be 0..4096");
  if (o.max_connect_attempts == 0) throw std::invalid_argument("--max-connect-attempts must be at least 1");
  if (o.http_max_connections == 0 || o.http_max_per_client == 0) {
    throw std::invalid_argument("--http-max-connections and --http-max-per-client must be at least 1");
  }
  // One-off commands connect hidden, as erl_call does, so they never join the cluster's mesh.
  if (vm.count("hidden") && vm.count("visible")) throw std::invalid_argument("give --hidden or --visible, not both");
  o.hidden = o.command == Command::kRun ? vm.count("hidden") > 0 : vm.count("visible") == 0;
  if (o.command == Command::kBroadcast) o.discover = vm.count("discover") ? vm["discover"].as<std::vector<std::string>>() : default_discovery();
  if (o.ssl_dist_optfile.empty()) {
    if (const char* f = std::getenv("CHAT_SSL_DIST_OPTFILE"); f != nullptr && *f != '\0') o.ssl_dist_optfile = f;
  }
  if (!o.proto_dist.empty() && o.proto_dist != "inet_tcp" && o.proto_dist != "inet_tls") {
    throw std::invalid_argument("--proto-dist " + o.proto_dist + " is not supported (inet_tcp or inet_tls)");
  }
  if (o.proto_dist == "inet_tcp" && vm.count("ssl-dist-optfile")) {
    throw std::invalid_argument("--ssl-dist-optfile needs --proto-dist inet_tls (or no --proto-dist)");
  }
  if (o.command == Command::kRun) {
    if (vm.count("port")) {
      o.http_port = vm["port"].as<uint16_t>();
    } else if (const char* p = std::getenv("PORT"); p != nullptr && *p != '\0' && web_dyno()) {
      try {
        const auto v = std::stoul(p);
        if (v > 65535) throw std::out_of_range("port");
        o.http_port = static_cast<uint16_t>(v);
      } catch (const std::exception&) {
        throw std::invalid_argument(std::string("PORT is not a port number: ") + p);
      }
    }
    if (const char* t = std::getenv("CHAT_WEB_TOKEN"); t != nullptr) o.web_token = t;
    // Heroku's router adds the client's address to X-Forwarded-For of every request it forwards.
    if (const char* dyno = std::getenv("DYNO"); dyno != nullptr && *dyno != '\0') o.http_behind_proxy = true;
    if (vm.count("metrics-port")) {
      o.metrics_port = vm["metrics-port"].as<uint16_t>();
    } else if (const char* p = std::getenv("CHAT_METRICS_PORT"); p != nullptr && *p != '\0') {
      try {
        const auto v = std::stoul(p);
        if (v == 0 || v > 65535) throw std::out_of_range("port");
        o.metrics_port = static_cast<uint16_t>(v);
      } catch (const std::exception&) {
        throw std::invalid_argument(std::string("CHAT_METRICS_PORT is not a port number: ") + p);
      }
    }
    if (o.metrics_port && o.http_port && *o.metrics_port == *o.http_port) {
      throw std::invalid_argument("--metrics-port is the web port: the web port serves /metrics already");
    }
    if (vm.count("discover")) {
      o.discover = vm["discover"].as<std::vector<std::string>>();
    } else {
      o.discover = default_discovery();
    }
    if (!vm["discovery-interval"].defaulted()) {
      // the flag wins
    } else if (const char* iv = std::getenv("CHAT_DISCOVERY_INTERVAL"); iv != nullptr && *iv != '\0') {
      try {
        o.discovery_interval_s = static_cast<uint32_t>(std::stoul(iv));
      } catch (const std::exception&) {
        throw std::invalid_argument(std::string("CHAT_DISCOVERY_INTERVAL is not a number: ") + iv);
      }
    }
    if (o.discovery_interval_s == 0) throw std::invalid_argument("--discovery-interval must be at least 1 second");
  }
  if (vm["busy-wait"].defaulted()) {
    if (const char* b = std::getenv("CHAT_BUSY_WAIT"); b != nullptr && *b != '\0') busy_wait = b;
  }
  using BusyWait = net::SpinPolicy::BusyWait;
  if (busy_wait == "none") {
    o.busy_wait = BusyWait::kNone;
  } else if (busy_wait == "long") {
    o.busy_wait = BusyWait::kLong;
  } else if (busy_wait != "medium") {
    throw std::invalid_argument("--busy-wait (or CHAT_BUSY_WAIT) is none, medium or long, not '" + busy_wait + "'");
  }
  return o;
}

}  // namespace chat::app
