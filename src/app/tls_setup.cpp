#include "chat/app/tls_setup.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "chat/tls/options.hpp"

namespace chat::app {

namespace {

constexpr long kDay = 24L * 3600;
// A certificate issued at boot lives as long as the dyno (Heroku restarts each daily); a
// month leaves room for a dyno that runs on, and the CA's key can issue another any time.
constexpr uint32_t kBootCertDays = 30;

// A variable's value. A PEM whose line breaks were written as the two characters \n (the
// way many tools keep a multi-line config var on one line) gets them back.
std::string env(const char* name) {
  const char* v = std::getenv(name);
  std::string s = v == nullptr ? std::string{} : std::string(v);
  if (s.find("-----BEGIN") != std::string::npos && s.find('\n') == std::string::npos) {
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] == '\\' && k + 1 < s.size() && s[k + 1] == 'n') {
        out.push_back('\n');
        ++k;
      } else {
        out.push_back(s[k]);
      }
    }
    s = std::move(out);
  }
  return s;
}

std::string read_text_file(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument(what + " " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void log_contexts(const tls::DistContexts& c, const std::string& source) {
  spdlog::info("distribution over TLS (inet_tls) from {}", source);
  spdlog::info("TLS {}", c.server->describe());
  spdlog::info("TLS {}", c.client->describe());
  for (const auto* ctx : {c.server.get(), c.client.get()}) {
    for (const auto& opt : ctx->options().no_effect) {
      spdlog::info("TLS option {} has no effect here (it configures a BEAM process or ssl's own logger)", opt);
    }
  }
}

// A directory only its owner can enter, made if missing (with any missing parents, private too).
std::string private_dir(const std::string& path) {
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
    const std::string parent = path.substr(0, at);
    if (mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("cannot make directory " + parent + ": " + std::strerror(errno));
    }
  }
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error("cannot make directory " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw std::runtime_error(path + " is not a directory");
  if (st.st_uid != geteuid()) throw std::runtime_error(path + " belongs to another user");
  if ((st.st_mode & 077) != 0 && chmod(path.c_str(), 0700) != 0) {
    throw std::runtime_error("cannot make " + path + " private: " + std::strerror(errno));
  }
  char real[PATH_MAX];
  if (realpath(path.c_str(), real) == nullptr) throw std::runtime_error(path + ": " + std::strerror(errno));
  return real;
}

// Written whole or not at all, readable by its owner only (mode 0600 from the start).
void write_private(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      close(fd);
      throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, 0600) != 0 || close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  }
}

const tls::Engine& engine() {
  if (tls::engine() == nullptr) throw std::runtime_error("this program has no TLS implementation (chat-node-tls has)");
  return *tls::engine();
}

struct CaSource {
  std::string cert;
  std::string key;
  std::string from;
};

// --ca DIR, else the environment; empty if neither.
CaSource ca_source(const Options& o) {
  if (!o.ca_dir.empty()) {
    return {read_text_file("CA certificate", o.ca_dir + "/ca.pem"), read_text_file("CA key", o.ca_dir + "/ca.key"),
            o.ca_dir};
  }
  CaSource s{env("CHAT_TLS_CACERT"), env("CHAT_TLS_CA_KEY"), "CHAT_TLS_CACERT and CHAT_TLS_CA_KEY"};
  if (s.cert.empty() != s.key.empty()) {
    throw std::invalid_argument(std::string(s.cert.empty() ? "CHAT_TLS_CA_KEY" : "CHAT_TLS_CACERT") +
                                " is set without " + (s.cert.empty() ? "CHAT_TLS_CACERT" : "CHAT_TLS_CA_KEY"));
  }
  return s;
}

}  // namespace

bool wants_tls(const Options& o) {
  if (o.command == Command::kTlsCa || o.command == Command::kTlsCert) return true;
  if (o.command == Command::kGenSecret || o.command == Command::kHelp || o.proto_dist == "inet_tcp") return false;
  const char* cacert = std::getenv("CHAT_TLS_CACERT");
  return o.proto_dist == "inet_tls" || !o.ssl_dist_optfile.empty() || (cacert != nullptr && *cacert != '\0');
}

tls::DistContexts dist_tls(const Options& o) {
  if (o.proto_dist == "inet_tcp") return {};
  if (!o.ssl_dist_optfile.empty()) {
    const std::string source = "ssl_dist_optfile " + o.ssl_dist_optfile;
    const auto parsed = tls::parse_optfile(read_text_file("ssl_dist_optfile", o.ssl_dist_optfile));
    if (!parsed.ok()) throw std::invalid_argument(source + ": " + parsed.error);
    auto c = tls::make_contexts(parsed.options, source);
    log_contexts(c, source);
    return c;
  }
  const std::string cacert = env("CHAT_TLS_CACERT");
  if (cacert.empty()) {
    if (o.proto_dist == "inet_tls") {
      throw std::invalid_argument(
          "--proto-dist inet_tls needs --ssl-dist-optfile FILE, or CHAT_TLS_CACERT with CHAT_TLS_CERT and "
          "CHAT_TLS_KEY (or CHAT_TLS_CA_KEY)");
    }
    return {};
  }
  // The cluster's certificates from the environment, verified both ways.
  auto d = tls::mutual_defaults();
  std::string cert = env("CHAT_TLS_CERT");
  std::string key = env("CHAT_TLS_KEY");
  const std::string ca_key = env("CHAT_TLS_CA_KEY");
  std::string source = "CHAT_TLS_CACERT, CHAT_TLS_CERT and CHAT_TLS_KEY";
  if (cert.empty() != key.empty()) {
    throw std::invalid_argument(std::string(cert.empty() ? "CHAT_TLS_KEY" : "CHAT_TLS_CERT") + " is set without " +
                                (cert.empty() ? "CHAT_TLS_CERT" : "CHAT_TLS_KEY"));
  }
  if (cert.empty()) {
    if (ca_key.empty()) {
      throw std::invalid_argument("CHAT_TLS_CACERT is set, but neither CHAT_TLS_CERT and CHAT_TLS_KEY nor CHAT_TLS_CA_KEY");
    }
    const std::string host = o.node_name.substr(o.node_name.find('@') + 1);
    tls::Validity v;
    v.not_after_s = long{kBootCertDays} * kDay;
    try {
      const auto issued = engine().issue_node_cert(cacert, ca_key, {host}, v);
      cert = issued.cert_pem;
      key = issued.key_pem;
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("cannot issue a certificate for ") + host +
                               " from CHAT_TLS_CACERT and CHAT_TLS_CA_KEY: " + e.what());
    }
    source = "CHAT_TLS_CACERT and CHAT_TLS_CA_KEY (a certificate issued for " + host + " at start)";
  }
  // No child (epmd -daemon) inherits a key.
  unsetenv("CHAT_TLS_KEY");
  unsetenv("CHAT_TLS_CA_KEY");
  for (auto* side : {&d.server, &d.client}) {
    side->cacert_pem = cacert;
    side->cert_pem = cert;
    side->key_pem = key;
  }
  auto c = tls::make_contexts(d, source);
  log_contexts(c, source);
  return c;
}

int run_tls_ca(const Options& o) {
  tls::Validity v;
  v.not_after_s = long{o.cert_days == 0 ? 3650U : o.cert_days} * kDay;
  const auto ca = engine().make_ca("chat-node cluster CA", v);
  const std::string dir = private_dir(o.out_dir);
  write_private(dir + "/ca.pem", ca.cert_pem);
  write_private(dir + "/ca.key", ca.key_pem);
  std::printf(
      "wrote %s/ca.pem (the cluster CA's certificate) and %s/ca.key (its key: keep it secret)\n"
      "On Heroku, every dyno issues itself a certificate from them at start:\n"
      "  heroku config:set CHAT_TLS_CACERT=\"$(cat %s/ca.pem)\" CHAT_TLS_CA_KEY=\"$(cat %s/ca.key)\"\n",
      dir.c_str(), dir.c_str(), dir.c_str(), dir.c_str());
  return 0;
}

int run_tls_cert(const Options& o) {
  const auto ca = ca_source(o);
  if (ca.cert.empty()) {
    if (o.cert_optional) return 0;
    throw std::invalid_argument("tls-cert needs a CA: --ca DIR (with ca.pem and ca.key), or CHAT_TLS_CACERT and "
                                "CHAT_TLS_CA_KEY");
  }
  tls::Validity v;
  v.not_before_s = o.backdate_days == 0 ? -3600L : -long{o.backdate_days} * kDay;
  v.not_after_s = v.not_before_s + long{o.cert_days == 0 ? kBootCertDays : o.cert_days} * kDay;
  tls::Issued node;
  try {
    node = engine().issue_node_cert(ca.cert, ca.key, o.cert_hosts, v);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("cannot issue a certificate from ") + ca.from + ": " + e.what());
  }
  const std::string dir = private_dir(o.out_dir);
  write_private(dir + "/node.pem", node.cert_pem);
  write_private(dir + "/node.key", node.key_pem);
  write_private(dir + "/ca.pem", ca.cert);
  write_private(dir + "/ssl_dist.conf", tls::render_optfile(dir + "/node.pem", dir + "/node.key", dir + "/ca.pem"));
  // What erl (or ELIXIR_ERL_OPTIONS, or chat-node's --ssl-dist-optfile) needs.
  std::printf("-proto_dist inet_tls -ssl_dist_optfile %s/ssl_dist.conf\n", dir.c_str());
  return 0;
}

}  // namespace chat::app
