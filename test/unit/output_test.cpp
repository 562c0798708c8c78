#include <doctest/doctest.h>

#include <string>

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
          out.line_owned(std::string(big));
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

  TEST_CASE("lines never flushed are still written when Output goes") {
    test::TempFile sink;
    {
      Output out(sink.file);
      out.line("only line");
    }
    CHECK(contents(sink.file) == "only line\n");
  }
}
