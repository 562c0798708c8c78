// The web dyno's parsers of what a client sends (app/web_input.hpp): the JSON body of
// POST /messages and the Authorization header.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "chat/app/web_input.hpp"

using chat::app::authorized;
using chat::app::basic_password;
using chat::app::parse_flat_json;
using Fields = std::map<std::string, std::string>;

TEST_SUITE("web") {
  TEST_CASE("a flat object of strings, escapes decoded") {
    CHECK(parse_flat_json(R"({"to": "moebi@10.0.0.2", "text": "hi"})") == Fields{{"to", "moebi@10.0.0.2"}, {"text", "hi"}});
    CHECK(parse_flat_json(" { } ") == Fields{});
    CHECK(parse_flat_json(R"({"t":"a\"b\\c\n\u00e9\u20ac\/"})") == Fields{{"t", "a\"b\\c\n\xc3\xa9\xe2\x82\xac/"}});
    CHECK(parse_flat_json(R"({"t":"x","t":"y"})") == Fields{{"t", "y"}});  // the last one wins
  }

  TEST_CASE("anything else is refused") {
    for (const char* body : {"", "[]", "{", R"({"a"})", R"({"a":1})", R"({"a":"b",})", R"({"a":"b"} x)",
                             R"({"a":"\u12"})", R"({"a":"\ud83d\ude00"})", R"({"a":"b)", R"({"a":"b\)", "{\"a\":\"b\"}}"}) {
      CAPTURE(body);
      CHECK_FALSE(parse_flat_json(body).has_value());
    }
  }

  TEST_CASE("Basic credentials: the password after the first colon") {
    CHECK(basic_password("dXNlcjpzM2NyZXQ=") == std::optional<std::string>("s3cret"));   // user:s3cret
    CHECK(basic_password("OnM6M2NyZXQ=") == std::optional<std::string>("s:3cret"));      // :s:3cret
    CHECK(basic_password("dXNlcjo=") == std::optional<std::string>(""));                 // user:
    CHECK_FALSE(basic_password("dXNlcg==").has_value());                                 // user
    CHECK_FALSE(basic_password("dXNlcjpzM2NyZXQ").has_value());                          // not a multiple of 4
    CHECK_FALSE(basic_password("!!!!").has_value());
    CHECK_FALSE(basic_password("").has_value());
  }

  TEST_CASE("the token as Bearer or as Basic's password, nothing else") {
    chat::http::Request req;
    CHECK(authorized(req, ""));
    CHECK_FALSE(authorized(req, "s3cret"));
    struct Case {
      const char* header;
      const char* token;
      bool in;
    };
    for (const Case& c : {Case{"Bearer s3cret", "s3cret", true}, Case{"bearer   s3cret", "s3cret", true},
                          Case{"Bearer s3cre", "s3cret", false}, Case{"Basic dXNlcjpzM2NyZXQ=", "s3cret", true},
                          Case{"Basic dXNlcjpzM2NyZXQ=", "other", false}, Case{"Digest s3cret", "s3cret", false},
                          Case{"s3cret", "s3cret", false}}) {
      CAPTURE(c.header);
      req.headers["authorization"] = c.header;
      CHECK(authorized(req, c.token) == c.in);
    }
  }
}
