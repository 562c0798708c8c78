// ping-pong: request/reply round trips spaced by a pause, the floors of the traffic-rate rows.
//
//   ping-pong tcp  --gaps 0,0.2,1,5,20,100 [--req 64] [--rep 64] [--block-ms 2000]
//       A plain TCP echo pair: this process is the client, a forked child the server (one
//       socket, blocking epoll_wait, no spin, TCP_NODELAY), which answers every REQ bytes
//       with REP bytes. What the machine itself costs for a round trip after a pause.
//   ping-pong dist --target NODE --cookie C --gaps ... [--cpu-pid PID] [--floor]
//       A hidden distribution node (chat::dist::Handshake) that calls
//       GenServer.call({Chat, NODE}, :count) spaced by each pause. With --floor, every block
//       is followed by a block of the plain TCP pair with the request and reply frames' sizes,
//       so the two are measured side by side.
//   ping-pong clock
//       Prints `realtime_minus_monotonic_ns=N`: CLOCK_REALTIME less CLOCK_MONOTONIC, to put
//       timestamps of the kernel's trace (trace_clock mono) on the wall clock that tcpdump and
//       the BEAM client stamp with. The tightest of many brackets, so off by well under 1 µs.
//
// Common options: --calls-min 100 --calls-max 5000 (calls per block: BLOCK_MS / (gap + 0.1 ms)
// within those), --warmup 200 (back-to-back calls before each block), --runs 1, and
// --spin-below-ms 1: pauses shorter than that are busy-waited, longer ones slept
// (clock_nanosleep), as bench/gap_client.exs does on a BEAM, whose timers count milliseconds.
// The client reads with blocking read(2): it is never the slow side.
//
// One line per block: `tcp|dist gap_ms=G calls=N req=B rep=B p50_us=… p99_us=… cpu_us=… wakes=…`,
// cpu_us being the server's (or --cpu-pid's) CPU time over the block per call, pauses
// included, and wakes its voluntary context switches per call (the times it slept).
// Exit status 0 unless something could not run.
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>

#include "chat/dist/constants.hpp"
#include "chat/dist/framing.hpp"
#include "chat/dist/handshake.hpp"
#include "chat/epmd/protocol.hpp"
#include "chat/term/term.hpp"
#include "common.hpp"

namespace {

namespace term = chat::term;
namespace flag = chat::dist::flag;

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ULL + uint64_t(ts.tv_nsec);
}

// Sums, over every thread of a process, what `field` reads from /proc/PID/task/TID/<file>.
uint64_t sum_tasks(long pid, const char* file, const std::function<uint64_t(std::istream&)>& field) {
  uint64_t total = 0;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream f(dir + "/" + e->d_name + "/" + file);
      total += field(f);
    }
    closedir(d);
  }
  return total;
}

// CPU time (ns) of every thread of a process, as scripts/bench reads it.
uint64_t cpu_ns(long pid) {
  return sum_tasks(pid, "schedstat", [](std::istream& in) {
    uint64_t ns = 0;
    return (in >> ns) ? ns : 0;
  });
}

// How often every thread of a process has gone to sleep (voluntary context switches).
uint64_t wakes(long pid) {
  return sum_tasks(pid, "status", [](std::istream& in) {
    static const std::string key = "voluntary_ctxt_switches:";
    for (std::string line; std::getline(in, line);)
      if (line.compare(0, key.size(), key) == 0) return uint64_t{std::stoull(line.substr(key.size()))};
    return uint64_t{0};
  });
}

std::vector<double> parse_gaps(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stod(item));
  if (out.empty()) throw std::invalid_argument("--gaps: pauses in ms, e.g. 0,0.2,1,5,20,100");
  return out;
}

struct Plan {
  std::vector<double> gaps;
  uint64_t block_ms = 2000, calls_min = 100, calls_max = 5000, warmup = 200, runs = 1;
  double spin_below_ms = 1;

  explicit Plan(const bench::Args& a)
      : gaps(parse_gaps(a.str("gaps", "0,0.2,1,5,20,100"))),
        block_ms(a.num("block-ms", 2000)),
        calls_min(a.num("calls-min", 100)),
        calls_max(a.num("calls-max", 5000)),
        warmup(a.num("warmup", 200)),
        runs(a.num("runs", 1)),
        spin_below_ms(std::stod(a.str("spin-below-ms", "1"))) {}

  [[nodiscard]] uint64_t calls(double gap) const {
    const auto n = static_cast<uint64_t>(std::llround(double(block_ms) / (gap + 0.1)));
    return std::clamp(n, calls_min, calls_max);
  }
  void pause(double gap) const {
    if (gap <= 0) return;
    const auto ns = static_cast<uint64_t>(gap * 1e6);
    if (gap < spin_below_ms) {
      const uint64_t until = now_ns() + ns;
      while (now_ns() < until) {
      }
      return;
    }
    timespec ts{static_cast<time_t>(ns / 1'000'000'000ULL), static_cast<long>(ns % 1'000'000'000ULL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
    }
  }
};

bool read_exact(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// Times `calls` round trips of `once`, pausing `gap` between them; prints the block's line.
void block(const char* what, const Plan& plan, double gap, size_t req, size_t rep, long cpu_pid,
           const std::function<void()>& once) {
  for (uint64_t i = 0; i < plan.warmup; ++i) once();
  const uint64_t calls = plan.calls(gap);
  std::vector<double> us;
  us.reserve(calls);
  plan.pause(gap);
  const uint64_t cpu0 = cpu_ns(cpu_pid), wakes0 = wakes(cpu_pid);
  for (uint64_t i = 0; i < calls; ++i) {
    const uint64_t t0 = now_ns();
    once();
    us.push_back(double(now_ns() - t0) / 1000.0);
    if (i + 1 < calls) plan.pause(gap);
  }
  const uint64_t cpu1 = cpu_ns(cpu_pid), wakes1 = wakes(cpu_pid);
  std::sort(us.begin(), us.end());
  const double p50 = us[us.size() * 50 / 100];
  const double p99 = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  std::printf("%s gap_ms=%g calls=%llu req=%zu rep=%zu p50_us=%.1f p99_us=%.1f cpu_us=%.2f wakes=%.2f\n", what, gap,
              static_cast<unsigned long long>(calls), req, rep, p50, p99, double(cpu1 - cpu0) / 1000.0 / double(calls),
              double(wakes1 - wakes0) / double(calls));
  std::fflush(stdout);
}

// ---- the plain TCP pair ------------------------------------------------------------------------

// Serves one connection: every `req` bytes read are answered with `rep` bytes. Blocking
// epoll_wait on a non-blocking socket, as an ordinary event loop without a spin does.
[[noreturn]] void serve(int lfd, size_t req, size_t rep) {
  const int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) _exit(1);
  bench::set_nodelay(fd);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  std::vector<char> in(std::max<size_t>(req, 64 * 1024));
  const std::string out(rep, 'r');
  size_t have = 0;
  for (;;) {
    epoll_event got{};
    if (epoll_wait(ep, &got, 1, -1) < 0) continue;
    for (;;) {
      const ssize_t n = ::read(fd, in.data(), in.size());
      if (n == 0) _exit(0);
      if (n < 0) break;  // EAGAIN: back to epoll_wait
      have += static_cast<size_t>(n);
      while (have >= req) {
        have -= req;
        if (!bench::write_all(fd, out)) _exit(1);
      }
    }
  }
}

class TcpPair {
 public:
  TcpPair(size_t req, size_t rep) : req_(req), rep_(rep), out_(req, 'q'), in_(rep) {
    const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = bench::loopback(0);
    socklen_t alen = sizeof a;
    if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
      throw std::runtime_error(std::string("listen: ") + strerror(errno));
    }
    server_ = fork();
    if (server_ == 0) serve(lfd, req, rep);
    close(lfd);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error(std::string("connect: ") + strerror(errno));
    }
    bench::set_nodelay(fd_);
  }
  TcpPair(const TcpPair&) = delete;
  TcpPair& operator=(const TcpPair&) = delete;
  ~TcpPair() {
    close(fd_);
    waitpid(server_, nullptr, 0);
  }
  void once() {
    if (!bench::write_all(fd_, out_) || !read_exact(fd_, in_.data(), rep_)) throw std::runtime_error("echo failed");
  }
  [[nodiscard]] long server() const { return server_; }
  [[nodiscard]] size_t req() const { return req_; }
  [[nodiscard]] size_t rep() const { return rep_; }

 private:
  size_t req_, rep_;
  std::string out_;
  std::vector<char> in_;
  pid_t server_ = -1;
  int fd_ = -1;
};

int run_tcp(const bench::Args& args) {
  const Plan plan(args);
  TcpPair pair(args.num("req", 64), args.num("rep", 64));
  for (uint64_t r = 0; r < plan.runs; ++r) {
    for (const double gap : plan.gaps) block("tcp", plan, gap, pair.req(), pair.rep(), pair.server(), [&] { pair.once(); });
  }
  return 0;
}

// ---- the distribution client -------------------------------------------------------------------

std::string alive_of(const std::string& node) { return node.substr(0, node.find('@')); }

int connect_loopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in a = bench::loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    throw std::runtime_error("cannot connect to port " + std::to_string(port) + ": " + strerror(errno));
  }
  return fd;
}

uint16_t lookup_port(uint16_t epmd_port, const std::string& node) {
  namespace epmd = chat::epmd;
  const int fd = connect_loopback(epmd_port);
  if (!bench::write_all(fd, epmd::port_please2_request(alive_of(node)))) throw std::runtime_error("EPMD write failed");
  std::string reply;
  char buf[512];
  for (;;) {
    const auto parsed = epmd::parse_port2_reply(reply);
    if (const auto* p = std::get_if<epmd::NodePort>(&parsed)) {
      close(fd);
      return p->port;
    }
    if (!std::holds_alternative<epmd::NeedMore>(parsed)) break;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  throw std::runtime_error("EPMD does not know " + node);
}

class DistCaller {
 public:
  DistCaller(const std::string& target, const std::string& cookie, uint16_t epmd_port) {
    std::mt19937 rng{std::random_device{}()};
    const std::string host = target.substr(target.find('@') + 1);
    me_ = "pingpong" + std::to_string(rng() % 1000000) + "@" + host;
    fd_ = connect_loopback(lookup_port(epmd_port, target));
    bench::set_nodelay(fd_);
    chat::dist::HandshakeConfig c;
    c.our_name = me_;
    // Hidden (no global sync to answer), and pass-through frames only (no atom cache).
    c.our_flags = flag::kOurs & ~flag::kPublished & ~flag::kDistHdrAtomCache;
    c.required_flags = flag::kMandatory25;
    c.our_creation = static_cast<uint32_t>(rng()) | 1U;
    c.cookie = cookie;
    c.random32 = [&rng] { return static_cast<uint32_t>(rng()); };
    c.admit = [](const std::string&) { return chat::dist::Admission::kOk; };
    chat::dist::Handshake hs(chat::dist::Handshake::Role::kInitiator, c);
    char buf[4096];
    for (;;) {
      if (hs.has_output() && !bench::write_all(fd_, hs.take_output())) throw std::runtime_error("handshake write");
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) throw std::runtime_error("handshake: connection closed");
      const auto r = hs.feed(std::string_view(buf, static_cast<size_t>(n)));
      if (hs.has_output() && !bench::write_all(fd_, hs.take_output())) throw std::runtime_error("handshake write");
      if (r == chat::dist::Handshake::Result::kFailed) throw std::runtime_error("handshake: " + hs.error());
      if (r == chat::dist::Handshake::Result::kDone) {
        reader_.feed(hs.leftover());
        creation_ = c.our_creation;
        break;
      }
    }
    // {'$gen_call', {Self, Ref}, count} to the name Chat; one ref serves every call, as the
    // reply only has to be told apart from ticks here. Elixir names the process Chat, the atom 'Elixir.Chat'.
    const term::Pid self{me_, 1, 0, creation_};
    const term::Term control = term::tuple({term::Term{int64_t{6}}, self, term::atom(""), term::atom("Elixir.Chat")});
    const term::Term payload = term::tuple(
        {term::atom("$gen_call"), term::tuple({self, term::Ref{me_, creation_, {1, 2, 3}}}), term::atom("count")});
    chat::dist::append_frame(request_, control, &payload);
  }
  DistCaller(const DistCaller&) = delete;
  DistCaller& operator=(const DistCaller&) = delete;
  ~DistCaller() { close(fd_); }

  // One call; returns the size of the reply frame (its 4-byte length included).
  size_t once() {
    if (!bench::write_all(fd_, request_)) throw std::runtime_error("write failed");
    std::string_view frame;
    for (;;) {
      const auto st = reader_.next(&frame);
      if (st == chat::dist::FrameReader::Status::kFrame) return frame.size() + 4;
      if (st == chat::dist::FrameReader::Status::kMalformed) throw std::runtime_error("malformed frame");
      if (st == chat::dist::FrameReader::Status::kTick) continue;
      const ssize_t n = ::read(fd_, buf_, sizeof buf_);
      if (n <= 0) throw std::runtime_error("connection closed");
      reader_.feed(std::string_view(buf_, static_cast<size_t>(n)));
    }
  }
  [[nodiscard]] size_t request_size() const { return request_.size(); }

 private:
  std::string me_;
  int fd_ = -1;
  uint32_t creation_ = 0;
  chat::dist::FrameReader reader_{size_t{1} << 20};
  std::string request_;
  char buf_[64 * 1024];
};

int run_dist(const bench::Args& args) {
  const Plan plan(args);
  const char* env = std::getenv("ERL_EPMD_PORT");
  const auto epmd_port = static_cast<uint16_t>(args.num("epmd-port", env != nullptr ? std::stoull(env) : 4369));
  DistCaller caller(args.need("target"), args.need("cookie"), epmd_port);
  const long cpu_pid = static_cast<long>(args.num("cpu-pid", 0));
  const size_t rep = caller.once();
  std::optional<TcpPair> pair;
  if (args.has("floor")) pair.emplace(caller.request_size(), rep);
  for (uint64_t r = 0; r < plan.runs; ++r) {
    for (const double gap : plan.gaps) {
      block("dist", plan, gap, caller.request_size(), rep, cpu_pid, [&] { caller.once(); });
      if (pair) block("tcp", plan, gap, pair->req(), pair->rep(), pair->server(), [&] { pair->once(); });
    }
  }
  return 0;
}

std::int64_t ns_of(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int run_clock() {
  std::int64_t best_span = INT64_MAX, offset = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::int64_t before = ns_of(CLOCK_REALTIME), mono = ns_of(CLOCK_MONOTONIC), after = ns_of(CLOCK_REALTIME);
    if (after - before < best_span) best_span = after - before, offset = before + (after - before) / 2 - mono;
  }
  std::printf("realtime_minus_monotonic_ns=%lld\n", static_cast<long long>(offset));
  return 0;
}

void usage() {
  std::fprintf(stderr,
               "usage: ping-pong tcp  [--req 64] [--rep 64] [common options]\n"
               "       ping-pong dist --target NODE --cookie C [--cpu-pid PID] [--floor] [--epmd-port P] [common options]\n"
               "       ping-pong clock\n"
               "common options: --gaps 0,0.2,1,5,20,100 --block-ms 2000 --calls-min 100 --calls-max 5000\n"
               "                --warmup 200 --runs 1 --spin-below-ms 1\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 64;
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (std::string(argv[1]) == "clock") return run_clock();
  try {
    const bench::Args args(argc, argv, 2);
    const std::string mode = argv[1];
    if (mode == "tcp") return run_tcp(args);
    if (mode == "dist") return run_dist(args);
    usage();
    return 64;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "ping-pong: %s\n", e.what());
    usage();
    return 64;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ping-pong: %s\n", e.what());
    return 1;
  }
}
