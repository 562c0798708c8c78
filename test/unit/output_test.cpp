#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <string>
#include <thread>

#include "chat/chat/output.hpp"
#include "fakes.hpp"

using chat::service::Output;

namespace {

std::string contents(std::FILE* f) {
  std::rewind(f);
  std::string all;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
  return all;
}

}  // namespace

TEST_SUITE("output") {
  TEST_CASE("lines come out whole and in order, large ones included, by the time Output goes") {
    test::TempFile sink;
    const std::string big(200000, 'b');
    std::string expected;
    {
      Output out(sink.file);
      for (int i = 0; i < 3000; ++i) {
        const std::string line = "line " + std::to_string(i);
        if (i % 1000 == 500) {
          out.line(chat::term::SharedBytes(std::string(big)));
          expected += big + "\n";
        }
        out.line(line);
        expected += line + "\n";
        if (i % 100 == 0) out.flush();
      }
      CHECK(out.lines() == 3003);
    }
    CHECK(contents(sink.file) == expected);
  }

  TEST_CASE("through a pipe or a FIFO with a slow reader, lines written at once and by the writer keep their order") {
    for (const bool fifo : {false, true}) {
      CAPTURE(fifo);
      int fds[2];
      test::TempDir dir;
      if (fifo) {
        // A named pipe refuses RWF_NOWAIT: the output writes through its own description.
        const std::string path = dir.path + "/out";
        REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        fds[0] = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
        REQUIRE(fds[0] >= 0);
        REQUIRE(::fcntl(fds[0], F_SETFL, 0) == 0);
        fds[1] = ::open(path.c_str(), O_WRONLY);
      } else {
        REQUIRE(::pipe(fds) == 0);
      }
      REQUIRE(fds[1] >= 0);
      std::string got;
      std::atomic<bool> start_reading{false};
      std::thread reader([&] {
        char buf[4096];
        ssize_t n = 0;
        while (!start_reading) std::this_thread::yield();  // the pipe fills first
        while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
      });
      std::FILE* w = ::fdopen(fds[1], "w");
      REQUIRE(w != nullptr);
      std::string expected;
      {
        Output out(w);
        for (int i = 0; i < 20000; ++i) {
          const std::string line = "pipe line " + std::to_string(i);
          out.line(line);
          expected += line + "\n";
          if (i % 7 == 0) out.flush();
          if (i == 10000) start_reading = true;  // 150 KB written: past the pipe's 64 KB
          if (i % 5000 == 2500) {
            out.line(chat::term::SharedBytes(std::string(100000, 'p')));
            expected += std::string(100000, 'p') + "\n";
          }
        }
        CHECK(out.direct());  // a full pipe sent lines to the writer, and only for a while
      }
      std::fclose(w);
      reader.join();
      ::close(fds[0]);
      CHECK(got == expected);
    }
  }

  TEST_CASE("a FIFO's and the null device's lines are written by the loop itself, a regular file's by the writer") {
    test::TempDir dir;
    const std::string path = dir.path + "/out";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    const int r = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
    REQUIRE(r >= 0);
    std::FILE* w = std::fopen(path.c_str(), "w");
    REQUIRE(w != nullptr);
    {
      Output out(w);
      out.line("at once");
      out.flush();
      CHECK(out.direct());
      char buf[64];
      // In the FIFO when flush() returns: no thread was asked to write it.
      CHECK(::read(r, buf, sizeof buf) == 8);
      CHECK(std::string(buf, 8) == "at once\n");
    }
    std::fclose(w);
    ::close(r);

    std::FILE* null = std::fopen("/dev/null", "w");
    REQUIRE(null != nullptr);
    {
      Output out(null);
      out.line("nobody");
      out.flush();
      CHECK(out.direct());
    }
    std::fclose(null);

    test::TempFile sink;
    Output out(sink.file);
    out.line("later");
    out.flush();
    CHECK_FALSE(out.direct());
  }

  TEST_CASE("lines never flushed are still written when Output goes") {
    test::TempFile sink;
    {
      Output out(sink.file);
      out.line("only line");
    }
    CHECK(contents(sink.file) == "only line\n");
  }
}

TEST_SUITE("output") {
  TEST_CASE("a stdout nobody reads: the output fills, never blocks, drops past the hard limit and gives up at exit") {
    std::signal(SIGPIPE, SIG_IGN);  // as the node does: the abandoned writer gets EPIPE below
    int fds[2];
    REQUIRE(::pipe(fds) == 0);  // nobody reads fds[0]
    std::FILE* w = ::fdopen(fds[1], "w");
    REQUIRE(w != nullptr);
    const std::string kilo(1000, 'k');
    {
      Output out(w, 64U << 10U);  // soft 64 KB, hard 256 KB; the pipe takes 64 KB
      CHECK_FALSE(out.full());
      bool resumed = false;
      for (int i = 0; i < 1000; ++i) {
        out.line(kilo);
        if (i % 10 == 0) out.flush();
        if (out.full() && !resumed) out.when_room([&] { resumed = true; });
      }
      out.flush();
      CHECK(out.full());
      CHECK_FALSE(resumed);
      CHECK(out.times_full() == 1);
      CHECK(out.dropped_lines() > 0);
      CHECK(out.queued_bytes() <= out.hard_limit());
      CHECK(out.lines() == 1000);
    }  // the destructor gives up on the stuck pipe instead of waiting for it
    // What did reach the pipe is whole lines, in order.
    std::string got(1U << 20U, '\0');
    const ssize_t n = ::read(fds[0], got.data(), got.size());
    REQUIRE(n > 0);
    got.resize(static_cast<size_t>(n));
    CHECK(got.substr(0, 1001) == kilo + "\n");
    // The writer left behind may still be in a writev: its descriptor is turned into /dev/null
    // rather than closed, so that its number is not reused under it by the next test.
    const int null = ::open("/dev/null", O_WRONLY);
    REQUIRE(null >= 0);
    ::dup2(null, fds[1]);
    ::close(null);
    ::close(fds[0]);
  }

  TEST_CASE("past the soft limit the waiters run once the reader catches up, and every line arrives") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    std::FILE* w = ::fdopen(fds[1], "w");
    REQUIRE(w != nullptr);
    std::string got;
    std::atomic<bool> start_reading{false};
    std::thread reader([&] {
      char buf[65536];
      ssize_t n = 0;
      while (!start_reading) std::this_thread::yield();
      while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    });
    std::string expected;
    std::atomic<int> woken{0};
    {
      Output out(w, 64U << 10U);
      out.set_wake([&] { ++woken; });  // from the writer thread
      int i = 0;
      while (!out.full()) {
        const std::string line = "line " + std::to_string(i++) + std::string(200, '.');
        out.line(line);
        expected += line + "\n";
        out.flush();
      }
      bool resumed = false;
      out.when_room([&] { resumed = true; });
      start_reading = true;
      for (int k = 0; k < 2000 && out.full(); ++k) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      CHECK_FALSE(out.full());
      CHECK(woken >= 1);
      CHECK_FALSE(resumed);  // the loop runs the waiters when woken
      out.run_waiters();
      CHECK(resumed);
      CHECK(out.dropped_lines() == 0);
    }
    std::fclose(w);
    reader.join();
    ::close(fds[0]);
    CHECK(got == expected);
  }
}
