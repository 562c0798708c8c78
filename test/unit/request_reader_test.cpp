// http::RequestReader: one request out of what a client sends, however it is cut, within
// its limits.
#include <doctest/doctest.h>

#include <string>

#include "chat/http/request_reader.hpp"

using chat::http::RequestReader;
using State = RequestReader::State;

namespace {

State feed_bytewise(RequestReader& r, const std::string& bytes) {
  State s = State::kMore;
  for (char c : bytes) s = r.feed(std::string_view(&c, 1));
  return s;
}

}  // namespace

TEST_SUITE("http") {
  TEST_CASE("a request whole or byte by byte") {
    const std::string get = "GET /nodes?x=1&y=2 HTTP/1.1\r\nHost: web\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n";
    for (bool bytewise : {false, true}) {
      RequestReader r(16 * 1024, 64 * 1024);
      const State s = bytewise ? feed_bytewise(r, get) : r.feed(get);
      REQUIRE(s == State::kDone);
      CHECK(r.request().method == "GET");
      CHECK(r.request().path == "/nodes");
      CHECK(r.request().query == "x=1&y=2");
      CHECK(r.request().headers.at("host") == "web");
      CHECK(r.request().headers.at("x-forwarded-for") == "10.0.0.9");
      CHECK(r.status() == 0);
    }
  }

  TEST_CASE("a body by length or in chunks; what follows the request is not read") {
    RequestReader r(16 * 1024, 64 * 1024);
    CHECK(r.feed("POST /messages HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel") == State::kMore);
    CHECK(r.feed("loGET / HTTP/1.1\r\n\r\n") == State::kDone);
    CHECK(r.request().body == "hello");
    CHECK(r.feed("garbage") == State::kDone);

    RequestReader c(16 * 1024, 64 * 1024);
    CHECK(c.feed("POST /broadcast HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n") ==
          State::kDone);
    CHECK(c.request().body == "abcde");
  }

  TEST_CASE("past a limit, or not HTTP: a 4xx, and nothing more is read") {
    RequestReader body(1024, 4);
    CHECK(body.feed("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello") == State::kFailed);
    CHECK(body.status() == 413);

    RequestReader header(64, 1024);
    CHECK(header.feed("GET / HTTP/1.1\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n") == State::kFailed);
    CHECK(header.status() == 431);

    RequestReader many(64, 1024);  // many short headers: the whole head is bounded too
    State s = many.feed("GET / HTTP/1.1\r\n");
    for (int i = 0; i < 20 && s == State::kMore; ++i) s = many.feed("A: b\r\n");
    CHECK(s == State::kFailed);
    CHECK(many.status() == 431);

    RequestReader junk(1024, 1024);
    CHECK(junk.feed("\x16\x03\x01\x02\x00") == State::kFailed);  // a TLS ClientHello
    CHECK(junk.status() == 400);
    CHECK(junk.feed("GET / HTTP/1.1\r\n\r\n") == State::kFailed);
  }

  TEST_CASE("at most 100 headers are kept") {
    RequestReader r(64 * 1024, 1024);
    std::string req = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 150; ++i) req += "H" + std::to_string(i) + ": v\r\n";
    CHECK(r.feed(req + "\r\n") == State::kDone);
    CHECK(r.request().headers.size() == 100);
  }
}
