// startup-probe: how long a node takes from exec to being useful. Starts the command given
// after `--` in its own process group with stdout on a pipe, and measures from just before
// fork() until (a) a stdout line starts with --line (default "Node name:") and (b) with
// --health-port, `GET /health` on 127.0.0.1:PORT answers 200. Then stops the whole process
// group (SIGTERM, SIGKILL after a grace period).
//
//   startup-probe [--line PREFIX] [--health-port P] [--timeout-ms 30000] [--stderr FILE] -- CMD ARGS...
//   → "startup node_name_ms=A health_ms=B" (-1: not seen); exit 1 if something was not seen.
#include <poll.h>
#include <sys/wait.h>

#include <csignal>

#include "common.hpp"

namespace {

// One attempt: 1 once /health answered 200, 0 if not (yet).
int try_health(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = bench::loopback(port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return 0;
  }
  const std::string req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::string resp;
  if (bench::write_all(fd, req)) {
    char buf[1024];
    pollfd p{fd, POLLIN, 0};
    while (resp.size() < 12 && poll(&p, 1, 2000) > 0) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return resp.rfind("HTTP/1.1 200", 0) == 0 || resp.rfind("HTTP/1.0 200", 0) == 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::Args args(argc, argv, 1);
    if (args.rest().empty()) throw std::invalid_argument("no command after --");
    const std::string prefix = args.str("line", "Node name:");
    const auto health_port = static_cast<uint16_t>(args.num("health-port", 0));
    const uint64_t timeout_ms = args.num("timeout-ms", 30000);
    const std::string err_file = args.str("stderr", "/dev/null");

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    std::vector<char*> cargv;
    for (const auto& s : args.rest()) cargv.push_back(const_cast<char*>(s.c_str()));
    cargv.push_back(nullptr);

    const double t0 = bench::now_s();
    const pid_t child = fork();
    if (child == 0) {
      setpgid(0, 0);
      dup2(out[1], STDOUT_FILENO);
      const int efd = open(err_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (efd >= 0) dup2(efd, STDERR_FILENO);
      execvp(cargv[0], cargv.data());
      _exit(127);
    }
    setpgid(child, child);
    close(out[1]);
    bench::set_nonblocking(out[0]);

    double line_ms = -1, health_ms = -1;
    std::string pending;
    bool eof = false;
    const auto done = [&] { return (line_ms >= 0 || prefix.empty()) && (health_ms >= 0 || health_port == 0); };
    while (!done() && (bench::now_s() - t0) * 1000 < static_cast<double>(timeout_ms)) {
      pollfd p{out[0], POLLIN, 0};
      const timespec wait{0, 250'000};  // 0.25 ms: the resolution of both measurements
      if (!eof && ppoll(&p, 1, &wait, nullptr) > 0) {
        char buf[4096];
        const ssize_t n = read(out[0], buf, sizeof buf);
        if (n == 0) eof = true;
        if (n > 0 && line_ms < 0) {
          pending.append(buf, static_cast<size_t>(n));
          size_t nl;
          while ((nl = pending.find('\n')) != std::string::npos) {
            if (pending.compare(0, prefix.size(), prefix) == 0) {
              line_ms = (bench::now_s() - t0) * 1000;
              break;
            }
            pending.erase(0, nl + 1);
          }
        }
      } else if (eof) {
        nanosleep(&wait, nullptr);
      }
      if (health_port != 0 && health_ms < 0 && try_health(health_port) == 1) health_ms = (bench::now_s() - t0) * 1000;
      int status = 0;
      if (waitpid(child, &status, WNOHANG) == child) {
        std::fprintf(stderr, "startup-probe: the command exited early (status %d)\n", status);
        std::printf("startup node_name_ms=%.2f health_ms=%.2f\n", line_ms, health_ms);
        return 1;
      }
    }

    kill(-child, SIGTERM);
    int status = 0;
    const double stop_deadline = bench::now_s() + 10;
    while (waitpid(child, &status, WNOHANG) == 0) {
      if (bench::now_s() > stop_deadline) {
        kill(-child, SIGKILL);
        waitpid(child, &status, 0);
        break;
      }
      // Keep the pipe drained so a node flushing output on exit cannot block on it.
      char buf[4096];
      while (read(out[0], buf, sizeof buf) > 0) {
      }
      const timespec wait{0, 2'000'000};
      nanosleep(&wait, nullptr);
    }
    // Whatever the group left behind (a BEAM's helper processes) goes too.
    kill(-child, SIGKILL);
    std::printf("startup node_name_ms=%.2f health_ms=%.2f\n", line_ms, health_ms);
    return done() ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "startup-probe: %s\n", e.what());
    return 64;
  }
}
