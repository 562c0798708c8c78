// tcp-blast: the loopback TCP bandwidth of this machine, as a ceiling for the distribution
// throughput figures. A receiver thread accepts one connection on 127.0.0.1 and reads (and
// discards) until it has all the bytes; the main thread writes them in fixed-size chunks.
// Two threads so that, like two nodes, sender and receiver can use two cores. The defaults
// are the fastest plain transfer measured here (4 MB writes, whole-chunk reads: about 5 GB/s,
// against 4 GB/s with 1 MB writes and reads that take what has arrived), so that no node
// figure can pass its ceiling by doing its I/O better than the ceiling does.
//
//   tcp-blast [--bytes 2147483648] [--chunk 4194304]
//   → "loopback bytes=N secs=T MBps=R"
#include <csignal>
#include <thread>

#include "common.hpp"

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

    double done_s = 0;
    uint64_t received = 0;
    std::thread receiver([&] {
      const int fd = accept(lfd, nullptr, nullptr);
      std::vector<char> buf(chunk);
      while (received < total) {
        // Whole chunks: a read that returns whatever has arrived wakes the receiver far more often.
        const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_WAITALL);
        if (n <= 0) break;
        received += static_cast<uint64_t>(n);
      }
      done_s = bench::now_s();
      close(fd);
    });

    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const double t0 = bench::now_s();
    if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error(std::string("connect: ") + strerror(errno));
    }
    const std::string block(chunk, 'x');
    uint64_t sent = 0;
    while (sent < total) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk, total - sent));
      const ssize_t n = write(fd, block.data(), want);
      if (n <= 0) break;
      sent += static_cast<uint64_t>(n);
    }
    receiver.join();
    close(fd);
    close(lfd);
    if (received < total) throw std::runtime_error("connection ended early");
    const double secs = done_s - t0;
    std::printf("loopback bytes=%llu secs=%.4f MBps=%.1f\n", static_cast<unsigned long long>(received), secs,
                static_cast<double>(received) / secs / 1e6);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tcp-blast: %s\n", e.what());
    return 1;
  }
}
