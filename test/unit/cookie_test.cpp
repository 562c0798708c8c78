#include <doctest/doctest.h>

#include <cstring>
#include <deque>

#include "chat/dist/random.hpp"

using chat::dist::make_cookie;

namespace {

// A scripted random source: hands out the queued bytes, fails once they run out.
std::deque<unsigned char> script;

bool scripted(void* buf, size_t size) {
  if (script.size() < size) return false;
  auto* p = static_cast<unsigned char*>(buf);
  for (size_t i = 0; i < size; ++i, script.pop_front()) p[i] = script.front();
  return true;
}

}  // namespace

TEST_SUITE("handshake") {
  TEST_CASE("a cookie maps each byte to one of 64 symbols") {
    script = {0, 25, 26, 51, 52, 61, 62, 63, 64, 255};
    CHECK(make_cookie(10, scripted) == "AZaz09_-A-");
  }

  TEST_CASE("a cookie never starts with '-': the first symbol is drawn again") {
    // 63, 127, 191 and 255 all map to '-'.
    script = {63, 1, 2, /* redraws */ 127, 191, 255, 7};
    CHECK(make_cookie(3, scripted) == "HBC");
    CHECK(script.empty());
  }

  TEST_CASE("a failing random source gives no cookie") {
    script = {1, 2};
    CHECK_FALSE(make_cookie(3, scripted).has_value());
    script = {63, 1, 2};  // fails while redrawing the first symbol
    CHECK_FALSE(make_cookie(3, scripted).has_value());
  }

  TEST_CASE("cookies from the kernel's source use only the alphabet and never start with '-'") {
    for (int i = 0; i < 10000; ++i) {
      const auto c = make_cookie(32);
      REQUIRE(c.has_value());
      REQUIRE(c->size() == 32);
      REQUIRE(c->front() != '-');
      REQUIRE(c->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
              std::string::npos);
    }
  }
}
