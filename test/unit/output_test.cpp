#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
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

  TEST_CASE("through a pipe with a slow reader, lines written at once and by the writer keep their order") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
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
    }
    std::fclose(w);
    reader.join();
    ::close(fds[0]);
    CHECK(got == expected);
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
