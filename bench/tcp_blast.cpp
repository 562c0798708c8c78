// tcp-blast: the loopback TCP bandwidth of this machine, as a ceiling for the distribution
// throughput figures. The process accepts one connection on 127.0.0.1 and reads (and
// discards) until it has all the bytes; a child process writes them in fixed-size chunks, so
// that, like two nodes, sender and receiver can use two cores. The defaults
// are the fastest plain transfer measured here (4 MB writes, whole-chunk reads: about 5 GB/s,
// against 4 GB/s with 1 MB writes and reads that take what has arrived), so that no node
// figure can pass its ceiling by doing its I/O better than the ceiling does.
//
// With --print, every chunk received is also written into a pipe (1 MB wide, as the node
// widens its stdout) that `cat >/dev/null` drains, by a writer thread as in the node: the same
// path as a node printing every message, done by the plainest program, as the ceiling for it.
//
//   tcp-blast [--bytes 2147483648] [--chunk 4194304] [--print]
//   → "loopback bytes=N secs=T MBps=R"
#include <fcntl.h>
#include <sys/wait.h>

#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "common.hpp"

namespace {

// Starts `cat >/dev/null` reading a pipe; returns the pipe's write end.
int start_reader(pid_t* pid) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + strerror(errno));
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  *pid = fork();
  if (*pid < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
  if (*pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    execlp("cat", "cat", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  return fds[1];
}

// Chunks handed from the receiving thread to the printing one; a few in flight, reused.
class Printer {
 public:
  Printer(int fd, size_t chunk) : fd_(fd) {
    for (int i = 0; i < 4; ++i) free_.emplace_back(chunk);
    thread_ = std::thread([this] { run(); });
  }
  std::vector<char> take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return !free_.empty(); });
    auto b = std::move(free_.front());
    free_.pop_front();
    return b;
  }
  void print(std::vector<char> b, size_t n) {
    b.resize(n);
    const std::lock_guard lock(mu_);
    full_.push_back(std::move(b));
    cv_.notify_all();
  }
  void finish() {
    {
      const std::lock_guard lock(mu_);
      done_ = true;
      cv_.notify_all();
    }
    thread_.join();
    close(fd_);
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return done_ || !full_.empty(); });
      if (full_.empty()) return;
      auto b = std::move(full_.front());
      full_.pop_front();
      lock.unlock();
      for (size_t at = 0; at < b.size();) {
        const ssize_t w = write(fd_, b.data() + at, b.size() - at);
        if (w <= 0) return;
        at += static_cast<size_t>(w);
      }
      b.resize(b.capacity());
      lock.lock();
      free_.push_back(std::move(b));
      cv_.notify_all();
    }
  }
  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<char>> free_, full_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::Args args(argc, argv, 1);
    const uint64_t total = args.num("bytes", uint64_t{2} << 30);
    const size_t chunk = args.num("chunk", size_t{4} << 20);
    std::signal(SIGPIPE, SIG_IGN);

    const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = bench::loopback(0);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 1) != 0) {
      throw std::runtime_error(std::string("listen: ") + strerror(errno));
    }
    socklen_t alen = sizeof a;
    getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen);

    // The sender is a process of its own, as a sending node is: two threads of one process
    // moved about 10% less here.
    const pid_t sender = fork();
    if (sender < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
    if (sender == 0) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) _exit(1);
      const std::string block(chunk, 'x');
      for (uint64_t sent = 0; sent < total;) {
        const ssize_t n = write(fd, block.data(), static_cast<size_t>(std::min<uint64_t>(chunk, total - sent)));
        if (n <= 0) _exit(1);
        sent += static_cast<uint64_t>(n);
      }
      _exit(0);
    }

    pid_t reader = -1;
    std::optional<Printer> printer;
    if (args.has("print")) printer.emplace(start_reader(&reader), chunk);
    const int fd = accept(lfd, nullptr, nullptr);
    const double t0 = bench::now_s();
    uint64_t received = 0;
    std::vector<char> buf(chunk);
    while (received < total) {
      if (printer) buf = printer->take();
      // Whole chunks: a read that returns whatever has arrived wakes the receiver far more often.
      const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_WAITALL);
      if (n <= 0) break;
      received += static_cast<uint64_t>(n);
      if (printer) printer->print(std::move(buf), static_cast<size_t>(n));
    }
    if (printer) {
      printer->finish();
      waitpid(reader, nullptr, 0);  // everything printed has been read
    }
    const double secs = bench::now_s() - t0;
    close(fd);
    close(lfd);
    waitpid(sender, nullptr, 0);
    if (received < total) throw std::runtime_error("connection ended early");
    std::printf("loopback bytes=%llu secs=%.4f MBps=%.1f\n", static_cast<unsigned long long>(received), secs,
                static_cast<double>(received) / secs / 1e6);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tcp-blast: %s\n", e.what());
    return 1;
  }
}
