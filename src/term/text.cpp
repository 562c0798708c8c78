// A scanner and parser in one pass: each parse_* reads from `at_` and returns false after
// setting the error. Erlang's grammar (erl_scan, erl_parse) is the reference for what is
// accepted; its reference manual chapter "Data Types" lists the escapes.
#include "chat/term/text.hpp"

#include <array>
#include <cctype>
#include <cstdint>
#include <limits>

namespace chat::term {

namespace {

// Words erl_parse never takes as an atom without quotes.
constexpr std::array<std::string_view, 29> kReserved = {
    "after", "and",   "andalso", "band", "begin", "bnot",    "bor",  "bsl", "bsr",  "bxor",
    "case",  "catch", "cond",    "div",  "else",  "end",     "if",   "let", "maybe", "not",
    "of",    "or",    "orelse",  "receive", "rem", "try",    "when", "xor", "fun"};

constexpr size_t kMaxAtom = 255;  // characters, as the BEAM's atom table allows

bool atom_start(unsigned char c) { return c >= 'a' && c <= 'z'; }
bool atom_char(unsigned char c) { return std::isalnum(c) != 0 || c == '_' || c == '@'; }
bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int digit_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

void put_atom(std::string& out, std::string_view name) {
  if (name.size() < 256) {
    out.push_back(static_cast<char>(119));  // SMALL_ATOM_UTF8_EXT
    out.push_back(static_cast<char>(name.size()));
  } else {
    out.push_back(static_cast<char>(118));  // ATOM_UTF8_EXT
    out.push_back(static_cast<char>(name.size() >> 8U));
    out.push_back(static_cast<char>(name.size() & 0xffU));
  }
  out.append(name);
}

class Parser {
 public:
  Parser(std::string_view text, const TextLimits& limits) : text_(text), limits_(limits) {}

  TextResult run() {
    TextResult r;
    if (text_.size() > limits_.max_bytes) {
      r.error = "text longer than " + std::to_string(limits_.max_bytes) + " bytes";
      r.line = 1;
      return r;
    }
    for (;;) {
      skip_blank();
      if (at_ >= text_.size()) break;
      Term t;
      if (!parse_term(&t, 0) || !expect_dot()) {
        r.terms.clear();
        r.error = error_;
        r.line = line_at(error_at_);
        return r;
      }
      r.terms.push_back(std::move(t));
    }
    return r;
  }

 private:
  bool fail(std::string why) {
    if (error_.empty()) {
      error_ = std::move(why);
      error_at_ = at_;
    }
    return false;
  }
  [[nodiscard]] size_t line_at(size_t pos) const {
    size_t line = 1;
    for (size_t k = 0; k < pos && k < text_.size(); ++k) line += text_[k] == '\n' ? 1 : 0;
    return line;
  }
  [[nodiscard]] bool more() const { return at_ < text_.size(); }
  [[nodiscard]] unsigned char peek(size_t ahead = 0) const {
    return at_ + ahead < text_.size() ? static_cast<unsigned char>(text_[at_ + ahead]) : 0;
  }
  // What the parser found, for messages.
  [[nodiscard]] std::string found() const {
    if (!more()) return "the end of the text";
    const unsigned char c = peek();
    if (c < 0x20 || c >= 0x7f) return "byte " + std::to_string(c);
    size_t n = 1;
    while (n < 12 && at_ + n < text_.size() && !is_space(peek(n)) && atom_char(peek(n)) && atom_char(c)) ++n;
    return "'" + std::string(text_.substr(at_, n)) + "'";
  }

  void skip_blank() {
    while (more()) {
      if (is_space(peek())) {
        ++at_;
      } else if (peek() == '%') {
        while (more() && peek() != '\n') ++at_;
      } else {
        return;
      }
    }
  }

  bool expect(char c) {
    skip_blank();
    if (peek() != static_cast<unsigned char>(c) || !more()) return fail(std::string("expected '") + c + "', found " + found());
    ++at_;
    return true;
  }

  // The full stop ends a term only when followed by white space, a comment or the end.
  bool expect_dot() {
    skip_blank();
    if (!more() || peek() != '.') return fail("expected '.' after the term, found " + found());
    ++at_;
    if (more() && !is_space(peek()) && peek() != '%') return fail("expected white space after '.', found " + found());
    return true;
  }

  bool count_item() {
    if (++items_ > limits_.max_items) return fail("more than " + std::to_string(limits_.max_items) + " terms");
    return true;
  }

  bool parse_term(Term* out, size_t depth) {
    if (depth > limits_.max_depth) return fail("terms nested deeper than " + std::to_string(limits_.max_depth));
    if (!count_item()) return false;
    skip_blank();
    if (!more()) return fail("expected a term, found the end of the text");
    const unsigned char c = peek();
    if (c == '[') return parse_list(out, depth);
    if (c == '{') return parse_tuple(out, depth);
    if (c == '#') return parse_map(out, depth);
    if (c == '<' && peek(1) == '<') return parse_binary(out, depth);
    if (c == '"') {
      std::string s;
      if (!parse_strings(&s)) return false;
      *out = string_term(s);
      return true;
    }
    if (c == '\'') {
      std::string name;
      if (!parse_quoted('\'', &name)) return false;
      if (name.size() > kMaxAtom) return fail("atom longer than 255 characters");
      *out = Atom{std::move(name)};
      return true;
    }
    if (c == '$') return parse_char(out);
    if (std::isdigit(c) != 0 || c == '-' || c == '+') return parse_integer(out);
    if (atom_start(c)) return parse_bare_atom(out);
    if (std::isupper(c) != 0 || c == '_') return fail("variables are not allowed (found " + found() + ")");
    return fail("expected a term, found " + found());
  }

  bool parse_bare_atom(Term* out) {
    const size_t start = at_;
    while (more() && atom_char(peek())) ++at_;
    const std::string_view word = text_.substr(start, at_ - start);
    if (word == "fun") return parse_fun(out);
    for (auto r : kReserved) {
      if (word == r) {
        at_ = start;
        return fail("reserved word '" + std::string(word) + "' is not a term (quote it to make an atom)");
      }
    }
    if (word.size() > kMaxAtom) return fail("atom longer than 255 characters");
    *out = Atom{std::string(word)};
    return true;
  }

  bool parse_atom_name(std::string* name) {
    skip_blank();
    if (peek() == '\'' && more()) return parse_quoted('\'', name);
    if (!more() || !atom_start(peek())) return fail("expected an atom, found " + found());
    const size_t start = at_;
    while (more() && atom_char(peek())) ++at_;
    *name = std::string(text_.substr(start, at_ - start));
    return true;
  }

  // fun Module:Function/Arity: an external fun, which needs no bindings to evaluate.
  bool parse_fun(Term* out) {
    std::string module;
    std::string function;
    if (!parse_atom_name(&module) || !expect(':') || !parse_atom_name(&function) || !expect('/')) {
      return fail("only 'fun Module:Function/Arity' funs are allowed");
    }
    skip_blank();
    Term arity;
    if (!more() || std::isdigit(peek()) == 0 || !parse_integer(&arity)) return fail("expected the fun's arity");
    const int64_t a = *arity.get<int64_t>();
    if (a > 255) return fail("fun arity above 255");
    if (module.size() > kMaxAtom || function.size() > kMaxAtom) return fail("atom longer than 255 characters");
    *out = external_fun(module, function, static_cast<unsigned>(a));
    return true;
  }

  bool parse_list(Term* out, size_t depth) {
    ++at_;  // [
    List list;
    skip_blank();
    if (peek() == ']' && more()) {
      ++at_;
      *out = std::move(list);
      return true;
    }
    for (;;) {
      Term item;
      if (!parse_term(&item, depth + 1)) return false;
      list.items.push_back(std::move(item));
      skip_blank();
      if (peek() == ',' && more()) {
        ++at_;
        continue;
      }
      if (peek() == '|' && more()) {
        ++at_;
        Term tail;
        if (!parse_term(&tail, depth + 1)) return false;
        // [a | [b]] is the proper list [a, b], as in Erlang.
        if (auto* rest = tail.get<List>()) {
          for (auto& t : rest->items) list.items.push_back(std::move(t));
          list.tail = std::move(rest->tail);
        } else {
          list.tail.push_back(std::move(tail));
        }
        if (!expect(']')) return false;
        break;
      }
      if (!expect(']')) return false;
      break;
    }
    *out = std::move(list);
    return true;
  }

  bool parse_tuple(Term* out, size_t depth) {
    ++at_;  // {
    Tuple tuple;
    skip_blank();
    if (peek() == '}' && more()) {
      ++at_;
      *out = std::move(tuple);
      return true;
    }
    for (;;) {
      Term item;
      if (!parse_term(&item, depth + 1)) return false;
      tuple.items.push_back(std::move(item));
      skip_blank();
      if (peek() == ',' && more()) {
        ++at_;
        continue;
      }
      if (!expect('}')) return false;
      break;
    }
    *out = std::move(tuple);
    return true;
  }

  bool parse_map(Term* out, size_t depth) {
    ++at_;  // #
    if (peek() != '{' || !more()) return fail("records are not allowed (only maps, #{...})");
    ++at_;
    Map map;
    skip_blank();
    if (peek() == '}' && more()) {
      ++at_;
      *out = std::move(map);
      return true;
    }
    for (;;) {
      Term key;
      Term value;
      if (!parse_term(&key, depth + 1)) return false;
      skip_blank();
      if (!(peek() == '=' && peek(1) == '>')) return fail("expected '=>' in a map, found " + found());
      at_ += 2;
      if (!parse_term(&value, depth + 1)) return false;
      // A key given twice keeps its last value, as when Erlang builds the map.
      std::erase_if(map.entries, [&](const auto& e) { return e.first == key; });
      map.entries.emplace_back(std::move(key), std::move(value));
      skip_blank();
      if (peek() == ',' && more()) {
        ++at_;
        continue;
      }
      if (!expect('}')) return false;
      break;
    }
    *out = std::move(map);
    return true;
  }

  // <<"text", 1, $a>>: each segment a string or a byte (an integer keeps its low 8 bits, as
  // a default 8-bit segment does). Sizes and types (<<X:16/little>>) are not taken.
  bool parse_binary(Term* out, size_t depth) {
    at_ += 2;  // <<
    std::string bytes;
    skip_blank();
    if (peek() == '>' && peek(1) == '>') {
      at_ += 2;
      *out = Binary(std::move(bytes));
      return true;
    }
    for (;;) {
      skip_blank();
      if (!count_item()) return false;
      if (depth + 1 > limits_.max_depth) return fail("terms nested deeper than " + std::to_string(limits_.max_depth));
      if (peek() == '"' && more()) {
        if (!parse_strings(&bytes)) return false;
      } else if (more() && (std::isdigit(peek()) != 0 || peek() == '-' || peek() == '+' || peek() == '$')) {
        Term v;
        if (!(peek() == '$' ? parse_char(&v) : parse_integer(&v))) return false;
        bytes.push_back(static_cast<char>(static_cast<uint64_t>(*v.get<int64_t>()) & 0xffU));
      } else {
        return fail("expected a string or a byte in a binary, found " + found());
      }
      skip_blank();
      if (peek() == ':' || peek() == '/') return fail("bit syntax (sizes, types) is not supported in binaries");
      if (peek() == ',' && more()) {
        ++at_;
        continue;
      }
      if (!(peek() == '>' && peek(1) == '>')) return fail("expected '>>', found " + found());
      at_ += 2;
      break;
    }
    *out = Binary(std::move(bytes));
    return true;
  }

  // "a" "b" is "ab", as erl_parse joins adjacent string literals.
  bool parse_strings(std::string* out) {
    for (;;) {
      if (!parse_quoted('"', out)) return false;
      const size_t save = at_;
      skip_blank();
      if (peek() != '"' || !more()) {
        at_ = save;
        return true;
      }
    }
  }

  // One quoted string or atom; appends its characters to out. Characters above 255 (\x{...})
  // are stored as UTF-8.
  bool parse_quoted(char quote, std::string* out) {
    ++at_;  // opening quote
    const size_t start = at_;
    while (more()) {
      const unsigned char c = peek();
      if (c == static_cast<unsigned char>(quote)) {
        ++at_;
        return true;
      }
      if (c == '\\') {
        uint32_t v = 0;
        if (!parse_escape(&v)) return false;
        append_char(out, v);
        continue;
      }
      out->push_back(static_cast<char>(c));
      ++at_;
    }
    at_ = start - 1;
    return fail(quote == '"' ? "unterminated string" : "unterminated quoted atom");
  }

  static void append_char(std::string* out, uint32_t v) {
    if (v < 256) {
      out->push_back(static_cast<char>(v));
    } else if (v < 0x800) {
      out->push_back(static_cast<char>(0xc0U | (v >> 6U)));
      out->push_back(static_cast<char>(0x80U | (v & 0x3fU)));
    } else if (v < 0x10000) {
      out->push_back(static_cast<char>(0xe0U | (v >> 12U)));
      out->push_back(static_cast<char>(0x80U | ((v >> 6U) & 0x3fU)));
      out->push_back(static_cast<char>(0x80U | (v & 0x3fU)));
    } else {
      out->push_back(static_cast<char>(0xf0U | (v >> 18U)));
      out->push_back(static_cast<char>(0x80U | ((v >> 12U) & 0x3fU)));
      out->push_back(static_cast<char>(0x80U | ((v >> 6U) & 0x3fU)));
      out->push_back(static_cast<char>(0x80U | (v & 0x3fU)));
    }
  }

  // At a backslash: the escape's value (the Erlang reference manual's table).
  bool parse_escape(uint32_t* v) {
    ++at_;  // backslash
    if (!more()) return fail("escape at the end of the text");
    const unsigned char c = peek();
    ++at_;
    switch (c) {
      case 'b': *v = 8; return true;
      case 'd': *v = 127; return true;
      case 'e': *v = 27; return true;
      case 'f': *v = 12; return true;
      case 'n': *v = 10; return true;
      case 'r': *v = 13; return true;
      case 's': *v = 32; return true;
      case 't': *v = 9; return true;
      case 'v': *v = 11; return true;
      case '^':
        if (!more()) return fail("escape at the end of the text");
        *v = peek() & 31U;
        ++at_;
        return true;
      case 'x': {
        uint32_t value = 0;
        if (peek() == '{' && more()) {
          ++at_;
          size_t n = 0;
          while (more() && digit_value(peek()) < 16) {
            value = value * 16 + static_cast<uint32_t>(digit_value(peek()));
            ++at_;
            if (++n > 6 || value > 0x10ffff) return fail("\\x{...} escape beyond Unicode");
          }
          if (n == 0 || peek() != '}' || !more()) return fail("malformed \\x{...} escape");
          ++at_;
        } else {
          for (int k = 0; k < 2; ++k) {
            if (!more() || digit_value(peek()) >= 16) return fail("malformed \\xHH escape");
            value = value * 16 + static_cast<uint32_t>(digit_value(peek()));
            ++at_;
          }
        }
        *v = value;
        return true;
      }
      default:
        if (c >= '0' && c <= '7') {
          uint32_t value = c - '0';
          for (int k = 0; k < 2 && more() && peek() >= '0' && peek() <= '7'; ++k) {
            value = value * 8 + (peek() - '0');
            ++at_;
          }
          *v = value;
          return true;
        }
        *v = c;  // \\ \' \" and any other character stand for themselves
        return true;
    }
  }

  bool parse_char(Term* out) {
    ++at_;  // $
    if (!more()) return fail("character literal at the end of the text");
    uint32_t v = peek();
    if (v == '\\') {
      if (!parse_escape(&v)) return false;
    } else {
      ++at_;
    }
    *out = static_cast<int64_t>(v);
    return true;
  }

  // [+-] Digits, or [+-] Base#Digits; '_' may separate digits. A '.' followed by a digit
  // would make a float, which is refused rather than truncated.
  bool parse_integer(Term* out) {
    bool negative = false;
    if (peek() == '-' || peek() == '+') {
      negative = peek() == '-';
      ++at_;
      skip_blank();
    }
    if (!more() || std::isdigit(peek()) == 0) return fail("expected a number, found " + found());
    uint64_t value = 0;
    if (!digits(10, &value)) return false;
    if (peek() == '#' && more()) {
      if (value < 2 || value > 36) return fail("integer base " + std::to_string(value) + " is not 2..36");
      const auto base = static_cast<int>(value);
      ++at_;
      if (!more() || digit_value(peek()) >= base) return fail("expected base-" + std::to_string(base) + " digits");
      value = 0;
      if (!digits(base, &value)) return false;
    } else if (peek() == '.' && std::isdigit(peek(1)) != 0) {
      return fail("floats are not supported");
    }
    constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (value > kMax + (negative ? 1 : 0)) return fail("integer out of range");
    *out = negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
    return true;
  }

  bool digits(int base, uint64_t* value) {
    bool last_digit = false;
    while (more()) {
      const unsigned char c = peek();
      if (c == '_' && last_digit && digit_value(peek(1)) < base && at_ + 1 < text_.size()) {
        ++at_;
        last_digit = false;
        continue;
      }
      const int d = digit_value(c);
      if (d >= base) break;
      if (*value > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
        return fail("integer out of range");
      }
      *value = *value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
      last_digit = true;
      ++at_;
    }
    return true;
  }

  static Term string_term(const std::string& s) {
    List l;
    l.items.reserve(s.size());
    for (unsigned char c : s) l.items.emplace_back(static_cast<int64_t>(c));
    return l;
  }

  std::string_view text_;
  const TextLimits& limits_;
  size_t at_ = 0;
  size_t items_ = 0;
  std::string error_;
  size_t error_at_ = 0;
};

}  // namespace

TextResult parse_terms(std::string_view text, const TextLimits& limits) { return Parser(text, limits).run(); }

Term external_fun(const std::string& module, const std::string& function, unsigned arity) {
  std::string encoded;
  encoded.push_back(static_cast<char>(113));  // EXPORT_EXT
  put_atom(encoded, module);
  put_atom(encoded, function);
  encoded.push_back(static_cast<char>(97));  // SMALL_INTEGER_EXT
  encoded.push_back(static_cast<char>(arity));
  return Raw{std::move(encoded)};
}

bool text_bytes(const Term& t, std::string* out) {
  if (const auto* b = t.get<Binary>()) {
    *out = std::string(b->bytes());
    return true;
  }
  const auto* l = t.get<List>();
  if (l == nullptr || !l->tail.empty()) return false;
  std::string s;
  s.reserve(l->items.size());
  for (const auto& item : l->items) {
    const auto* v = item.get<int64_t>();
    if (v == nullptr || *v < 0 || *v > 255) return false;
    s.push_back(static_cast<char>(*v));
  }
  *out = std::move(s);
  return true;
}

}  // namespace chat::term
