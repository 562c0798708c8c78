// The Erlang-text parser (term/text.hpp) against what a real BEAM makes of the same text:
// each golden value is term_to_binary(ssl_dist_sup:consult(File)) from OTP 25.2.3, decoded
// with the project's own decoder and compared with the parser's result.
#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "chat/term/term.hpp"
#include "chat/term/text.hpp"
#include "hex.hpp"

using namespace chat::term;

namespace {

Term golden(const std::string& hex) {
  const auto t = decode(test::unhex(hex));
  REQUIRE(t.has_value());
  return *t;
}

Term parse_one(std::string_view text) {
  const auto r = parse_terms(text);
  INFO(r.error);
  REQUIRE(r.ok());
  REQUIRE(r.terms.size() == 1);
  return r.terms.front();
}

std::string error_of(std::string_view text, size_t* line = nullptr) {
  const auto r = parse_terms(text);
  if (line) *line = r.line;
  return r.error;
}

// The optfile of issue 14, as a BEAM reads it.
constexpr const char* kIssueOptfile = R"([{server, [{certfile, "/app/certs/node.pem"}, {keyfile, "/app/certs/node.key"},
           {cacertfile, "/app/certs/ca.pem"}, {verify, verify_peer},
           {fail_if_no_peer_cert, true}, {secure_renegotiate, true}]},
 {client, [{certfile, "/app/certs/node.pem"}, {keyfile, "/app/certs/node.key"},
           {cacertfile, "/app/certs/ca.pem"}, {verify, verify_peer},
           {server_name_indication, disable}, {secure_renegotiate, true}]}].
)";
constexpr const char* kIssueGolden =
    "836C0000000268026400067365727665726C0000000668026400086365727466696C656B00132F6170702F63657274732F6E6F64652E70"
    "656D68026400076B657966696C656B00132F6170702F63657274732F6E6F64652E6B6579680264000A63616365727466696C656B0011"
    "2F6170702F63657274732F63612E70656D680264000676657269667964000B7665726966795F7065657268026400146661696C5F6966"
    "5F6E6F5F706565725F636572746400047472756568026400127365637572655F72656E65676F7469617465640004747275656A680264"
    "0006636C69656E746C0000000668026400086365727466696C656B00132F6170702F63657274732F6E6F64652E70656D680264000"
    "76B657966696C656B00132F6170702F63657274732F6E6F64652E6B6579680264000A63616365727466696C656B00112F6170702F63"
    "657274732F63612E70656D680264000676657269667964000B7665726966795F7065657268026400167365727665725F6E616D655F"
    "696E6469636174696F6E64000764697361626C6568026400127365637572655F72656E65676F7469617465640004747275656A6A";

// Every kind of term the parser takes, with comments and an encoding line.
constexpr const char* kSyntaxOptfile = R"(%% -*- coding: utf-8 -*-
% every kind of term the parser takes
[{'quoted atom', "a\tb\x41\101\^A\s\x{41}"},  % escapes
 {c, $a}, {c2, $\n}, {d, -42}, {d2, - 7}, {e, 16#ff}, {f, 2#1010}, {g, 1_000},
 {h, <<"bin", 0, 255, $z>>}, {h2, <<>>}, {i, [a | b]}, {i2, [a | [b, c]]},
 {j, "ab" "cd"}, {k, #{a => 1, "s" => [x]}}, {l, {}}, {m, []}, {n, 'Up'},
 {o, node@host}, {p, 'it\'s'}, {q, "caf\303\251"},
 {z, ok}].
)";
constexpr const char* kSyntaxGolden =
    "836C00000015680264000B71756F7465642061746F6D6B00086109624141012041680264000163616168026400026332610A6802640"
    "0016462FFFFFFD66802640002643262FFFFFFF968026400016561FF680264000166610A68026400016762000003E86802640001686D"
    "0000000662696E00FF7A680264000268326D000000006802640001696C000000016400016164000162680264000269326C00000003"
    "6400016164000162640001636A68026400016A6B00046162636468026400016B74000000026400016161016B0001736C000000016400"
    "01786A68026400016C680068026400016D6A68026400016E640002557068026400016F6400096E6F646540686F73746802640001706"
    "40004697427736802640001716B0005636166C3A968026400017A6400026F6B6A";

}  // namespace

TEST_SUITE("text") {
  TEST_CASE("the optfile of issue 14 reads as a BEAM reads it") {
    CHECK(parse_one(kIssueOptfile) == golden(kIssueGolden));
  }

  TEST_CASE("escapes, bases, binaries, maps, improper lists: as a BEAM reads them") {
    CHECK(parse_one(kSyntaxOptfile) == golden(kSyntaxGolden));
  }

  TEST_CASE("the same term whatever the white space and comments") {
    CHECK(parse_one("[{a,\"b\"}].") == parse_one("  [ { a , % c\n \"b\" } ] .\n% end"));
  }

  TEST_CASE("several terms, as file:consult reads them") {
    const auto r = parse_terms("a. {b}.\n\"c\".");
    REQUIRE(r.ok());
    CHECK(r.terms.size() == 3);
    CHECK(r.terms[0] == atom("a"));
    CHECK(r.terms[1] == tuple({atom("b")}));
  }

  TEST_CASE("fun Module:Function/Arity is an external fun") {
    const Term t = parse_one("{verify_fun, {fun inet_tls_dist:verify_client/3, []}}.");
    const auto* items = t.tuple(2);
    REQUIRE(items != nullptr);
    const auto* inner = (*items)[1].tuple(2);
    REQUIRE(inner != nullptr);
    CHECK((*inner)[0] == external_fun("inet_tls_dist", "verify_client", 3));
    // EXPORT_EXT, then the two atoms, then the arity.
    CHECK(test::hex(external_fun("m", "f", 3).get<Raw>()->encoded) == "7177016d77016661" "03");
  }

  TEST_CASE("integers at the edges of 64 bits") {
    CHECK(parse_one("9223372036854775807.") == Term{int64_t{9223372036854775807}});
    CHECK(parse_one("-9223372036854775808.") == Term{std::numeric_limits<int64_t>::min()});
    CHECK(error_of("9223372036854775808.") == "integer out of range");
    CHECK(error_of("99999999999999999999999.") == "integer out of range");
    CHECK(parse_one("36#zz.") == Term{int64_t{36 * 36 - 1}});
  }

  TEST_CASE("strings and binaries give bytes for paths") {
    std::string s;
    CHECK(text_bytes(parse_one("\"/app/n\\303\\251.pem\"."), &s));
    CHECK(s == "/app/n\xc3\xa9.pem");
    CHECK(text_bytes(parse_one("<<\"/x\">>."), &s));
    CHECK(s == "/x");
    CHECK(text_bytes(parse_one("\"\\x{e9}\"."), &s));
    CHECK(s == "\xe9");
    CHECK(text_bytes(parse_one("\"\\x{100}\"."), &s));  // above 255: its UTF-8 bytes
    CHECK(s == "\xc4\x80");
    CHECK_FALSE(text_bytes(parse_one("[1, 300]."), &s));
    CHECK_FALSE(text_bytes(parse_one("atom."), &s));
    CHECK_FALSE(text_bytes(parse_one("[a | \"b\"]."), &s));
  }

  TEST_CASE("errors name the line and what was found") {
    size_t line = 0;
    CHECK(error_of("[{a, b}", &line) == "expected ']', found the end of the text");
    CHECK(error_of("[\n{a,\n X}].", &line) == "variables are not allowed (found 'X')");
    CHECK(line == 3);
    CHECK(error_of("[a].[b]") == "expected white space after '.', found '['");
    CHECK(error_of("[a]") == "expected '.' after the term, found the end of the text");
    CHECK(error_of("{a, 1.5}.") == "floats are not supported");
    CHECK(error_of("{a, end}.") == "reserved word 'end' is not a term (quote it to make an atom)");
    CHECK(error_of("\"abc.") == "unterminated string");
    CHECK(error_of("'abc.") == "unterminated quoted atom");
    CHECK(error_of("<<X:8>>.") == "expected a string or a byte in a binary, found 'X'");
    CHECK(error_of("<<1:8>>.") == "bit syntax (sizes, types) is not supported in binaries");
    CHECK(error_of("#rec{a = 1}.") == "records are not allowed (only maps, #{...})");
    CHECK(error_of("fun (X) -> X end.") == "expected an atom, found '('");
    CHECK(error_of("37#1.") == "integer base 37 is not 2..36");
    CHECK(error_of("\"\\x{110000}\".") == "\\x{...} escape beyond Unicode");
    CHECK(error_of("1 + 2.") == "expected '.' after the term, found '+'");
    CHECK_FALSE(error_of(std::string(300, 'a') + ".").empty());  // atoms stop at 255 characters
  }

  TEST_CASE("limits: size, depth and item count") {
    TextLimits small;
    small.max_bytes = 10;
    CHECK(parse_terms("[aaaaaaaaaaaaaaaaa].", small).error == "text longer than 10 bytes");
    const std::string deep = std::string(100, '[') + std::string(100, ']') + ".";
    CHECK(parse_terms(deep).error == "terms nested deeper than 64");
    TextLimits few;
    few.max_items = 5;
    CHECK(parse_terms("[1,2,3,4,5,6].", few).error == "more than 5 terms");
    const std::string deep_binary = std::string(64, '{') + "<<1>>" + std::string(64, '}') + ".";
    CHECK_FALSE(parse_terms(deep_binary).ok());
  }

  TEST_CASE("every prefix of a valid file is rejected or parsed, never crashes") {
    const std::string text = kSyntaxOptfile;
    for (size_t n = 0; n < text.size(); ++n) {
      const auto r = parse_terms(std::string_view(text).substr(0, n));
      CHECK((r.ok() || r.line >= 1));
    }
  }
}
