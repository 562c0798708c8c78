// Target "optfile": the text of an -ssl_dist_optfile (term/text.hpp, then tls/options.hpp).
//
// Input: the file's bytes. Invariants besides "no crash": a parse either gives terms or an
// error with a line inside the text; an optfile either maps or says why, naming what; text
// that parsed parses the same after its terms are rendered back as Erlang (for the subset
// to_erlang_string writes as parsable text: atoms, integers, lists, tuples, binaries).
//
// Seeds (test/fuzz/corpus/optfile): the optfile of issue 14, the golden syntax file of
// test/unit/text_test.cpp, what chat-node tls-cert writes, and examples from OTP's ssl
// distribution guide.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chat/term/text.hpp"
#include "chat/tls/options.hpp"
#include "common.hpp"

namespace {

size_t lines(std::string_view text) {
  size_t n = 1;
  for (char c : text) n += c == '\n' ? 1 : 0;
  return n;
}

// True if to_erlang_string writes `t` as text parse_terms reads back as `t`.
bool renders_back(const chat::term::Term& t, size_t depth = 0) {
  using namespace chat::term;
  if (depth > 32) return false;
  if (t.get<int64_t>() != nullptr) return true;
  if (const auto* a = t.get<Atom>()) {
    // Quoted atoms come out without escapes, and reserved words without quotes.
    for (unsigned char c : a->name) {
      if (c == '\'' || c == '\\' || c < 0x20 || c >= 0x7f) return false;
    }
    for (const char* w : {"after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
                          "catch", "cond", "div", "else", "end", "if", "let", "maybe", "not", "of", "or", "orelse",
                          "receive", "rem", "try", "when", "xor", "fun"}) {
      if (a->name == w) return false;
    }
    return !a->name.empty();
  }
  if (const auto* b = t.get<Binary>()) {
    for (unsigned char c : b->bytes()) {
      if (c == '"' || c == '\\') return false;
    }
    return true;
  }
  if (const auto* tu = t.get<Tuple>()) {
    for (const auto& i : tu->items) {
      if (!renders_back(i, depth + 1)) return false;
    }
    return true;
  }
  if (const auto* l = t.get<List>()) {
    if (!l->tail.empty()) return false;
    for (const auto& i : l->items) {
      if (!renders_back(i, depth + 1)) return false;
    }
    return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  chat::term::TextLimits limits;
  limits.max_bytes = 1U << 16U;
  const auto parsed = chat::term::parse_terms(text, limits);
  if (parsed.ok()) {
    FUZZ_CHECK(parsed.line == 0);
    for (const auto& t : parsed.terms) {
      if (!renders_back(t)) continue;
      const std::string again = chat::term::to_erlang_string(t) + ".";
      const auto back = chat::term::parse_terms(again);
      FUZZ_CHECK(back.ok());
      FUZZ_CHECK(back.terms.size() == 1 && back.terms.front() == t);
    }
  } else {
    FUZZ_CHECK(!parsed.error.empty());
    FUZZ_CHECK(parsed.line >= 1 && parsed.line <= lines(text));
    FUZZ_CHECK(parsed.terms.empty());
  }
  const auto options = chat::tls::parse_optfile(text);
  FUZZ_CHECK(options.ok() || !options.error.empty());
  if (options.ok()) {
    // Whatever was read can be written as an optfile again and read back.
    const auto& s = options.options.server;
    const auto again = chat::tls::parse_optfile(chat::tls::render_optfile(s.certfile, s.keyfile, s.cacertfile));
    FUZZ_CHECK(again.ok() || s.certfile.empty() || s.keyfile.empty() || s.cacertfile.empty());
  }
  return 0;
}
