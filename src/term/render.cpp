// Human-readable renderings: Erlang syntax for logs, Elixir's inspect style for what a user
// of iex expects to read (e.g. the value returned by Chat.send_message).
#include <cctype>
#include <cstdio>

#include "chat/term/term.hpp"

namespace chat::term {
namespace {

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

bool plain_atom(const std::string& name, bool elixir) {
  if (name.empty()) return false;
  const unsigned char first = static_cast<unsigned char>(name[0]);
  // Erlang reads `_x` and `X` as variables; Elixir takes both after its colon.
  if (!(std::islower(first) || (elixir && (first == '_' || std::isupper(first))))) return false;
  for (size_t k = 0; k < name.size(); ++k) {
    const unsigned char c = static_cast<unsigned char>(name[k]);
    if (std::isalnum(c) || c == '_' || c == '@' || (elixir && (c == '.'))) continue;
    if (elixir && (c == '?' || c == '!') && k + 1 == name.size()) continue;
    return false;
  }
  return true;
}

std::string bytes_list(std::string_view s) {
  std::string out = "<<";
  for (size_t k = 0; k < s.size(); ++k) {
    if (k) out += ",";
    out += std::to_string(static_cast<unsigned char>(s[k]));
  }
  return out + ">>";
}

// Appends to one string, and stops once `max` characters are out: a log line or a web answer
// about a peer's term costs at most that, whatever the term's size.
struct Renderer {
  bool elixir;
  size_t max;
  std::string out;
  bool cut = false;  // something was left out

  [[nodiscard]] bool full() const { return out.size() >= max; }
  void put(std::string_view s) {
    if (s.size() > max - out.size()) cut = true;
    out.append(s.substr(0, max - out.size()));
  }
  void term(const Term& t) {
    if (full()) {
      cut = true;
      return;
    }
    std::visit(*this, t.value);
  }

  void operator()(int64_t v) { put(std::to_string(v)); }
  void operator()(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    put(buf);
  }
  void operator()(const Atom& a) {
    if (!elixir) {
      put(plain_atom(a.name, false) ? a.name : "'" + a.name + "'");
    } else if (a.name == "nil" || a.name == "true" || a.name == "false") {
      put(a.name);
    } else if (a.name.rfind("Elixir.", 0) == 0) {
      put(std::string_view(a.name).substr(7));
    } else {
      put(plain_atom(a.name, true) ? ":" + a.name : ":" + quoted(a.name));
    }
  }
  void operator()(const Binary& b) {
    // No more of a large binary than could be shown.
    const std::string_view bytes = b.bytes().substr(0, max - out.size());
    if (printable(bytes)) {
      put(elixir ? quoted(bytes) : "<<" + quoted(bytes) + ">>");
    } else {
      put(bytes_list(bytes));
    }
  }
  void operator()(const Pid& p) {
    put("#PID<" + p.node + "." + std::to_string(p.num) + "." + std::to_string(p.serial) + ">");
  }
  void operator()(const Ref& r) {
    put("#Reference<" + r.node);
    for (auto id : r.ids) put("." + std::to_string(id));
    put(">");
  }
  void operator()(const Tuple& t) {
    put("{");
    items(t.items);
    put("}");
  }
  void operator()(const List& l) {
    put("[");
    items(l.items);
    if (!l.tail.empty()) {
      put(" | ");
      term(l.tail.front());
    }
    put("]");
  }
  void operator()(const Map& m) {
    put(elixir ? "%{" : "#{");
    for (size_t k = 0; k < m.entries.size(); ++k) {
      if (full()) {
        cut = true;
        break;
      }
      if (k) put(", ");
      term(m.entries[k].first);
      put(" => ");
      term(m.entries[k].second);
    }
    put("}");
  }
  void operator()(const Raw& r) { put("#Term<" + std::to_string(r.encoded.size()) + " bytes>"); }

  void items(const std::vector<Term>& v) {
    for (size_t k = 0; k < v.size(); ++k) {
      if (full()) {
        cut = true;
        break;
      }
      if (k) put(", ");
      term(v[k]);
    }
  }

  std::string done() {
    if (cut) out += "...";
    return std::move(out);
  }
};

}  // namespace

std::string to_erlang_string(const Term& t, size_t max_chars) {
  Renderer r{false, max_chars, {}, false};
  r.term(t);
  return r.done();
}

std::string to_elixir_string(const Term& t, size_t max_chars) {
  Renderer r{true, max_chars, {}, false};
  r.term(t);
  return r.done();
}

}  // namespace chat::term
