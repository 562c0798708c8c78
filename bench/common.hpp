// Small helpers shared by the benchmark tools: a monotonic clock, a minimal `--key value`
// command line, loopback sockets and the resident memory of a process tree.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
inline uint64_t now_ms() { return static_cast<uint64_t>(now_s() * 1000.0); }

// `--key value` pairs and bare flags (`--flag` followed by another option or nothing).
// Anything after `--` is kept verbatim in rest().
class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--") {
        for (++i; i < argc; ++i) rest_.emplace_back(argv[i]);
        break;
      }
      if (a.rfind("--", 0) != 0) throw std::invalid_argument("unexpected argument: " + a);
      a = a.substr(2);
      if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        kv_[a] = argv[++i];
      } else {
        kv_[a] = "";
      }
    }
  }
  [[nodiscard]] bool has(const std::string& k) const { return kv_.contains(k); }
  [[nodiscard]] std::string str(const std::string& k, const std::string& def = {}) const {
    auto it = kv_.find(k);
    return it == kv_.end() ? def : it->second;
  }
  [[nodiscard]] std::string need(const std::string& k) const {
    auto it = kv_.find(k);
    if (it == kv_.end() || it->second.empty()) throw std::invalid_argument("missing --" + k);
    return it->second;
  }
  [[nodiscard]] uint64_t num(const std::string& k, uint64_t def) const {
    auto it = kv_.find(k);
    return it == kv_.end() ? def : std::stoull(it->second);
  }
  [[nodiscard]] const std::vector<std::string>& rest() const { return rest_; }

 private:
  std::map<std::string, std::string> kv_;
  std::vector<std::string> rest_;
};

inline sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

inline void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }
inline void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
// Close with a reset instead of a FIN: no TIME_WAIT left behind by thousands of connections.
inline void close_abortive(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

inline bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Parent pid of `pid` from /proc/PID/stat, or -1.
inline long parent_of(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  const auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream rest(line.substr(close_paren + 2));
  std::string state;
  long ppid = -1;
  rest >> state >> ppid;
  return ppid;
}

// A field of /proc/PID/status in KiB ("VmRSS", "RssAnon"...), 0 if absent.
inline uint64_t status_kb_of(long pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string key = field + ":";
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10);
  }
  return 0;
}

// A /proc/PID/status field (VmRSS by default) summed over `root` and all its descendants, in KiB (a BEAM has helper
// children such as erl_child_setup; the C++ node has none).
inline uint64_t tree_rss_kb(long root, const std::string& field = "VmRSS") {
  std::map<long, std::vector<long>> children;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      char* end = nullptr;
      const long pid = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0') continue;
      children[parent_of(pid)].push_back(pid);
    }
    closedir(d);
  }
  uint64_t total = 0;
  std::vector<long> todo{root};
  std::set<long> seen;
  while (!todo.empty()) {
    const long p = todo.back();
    todo.pop_back();
    if (!seen.insert(p).second) continue;
    total += status_kb_of(p, field);
    for (long c : children[p]) todo.push_back(c);
  }
  return total;
}

}  // namespace bench
