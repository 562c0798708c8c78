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
  if (!(std::islower(first) || first == '_' || (elixir && std::isupper(first)))) return false;
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

struct Renderer {
  bool elixir;

  std::string operator()(int64_t v) const { return std::to_string(v); }
  std::string operator()(double v) const {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }
  std::string operator()(const Atom& a) const {
    if (!elixir) return plain_atom(a.name, false) ? a.name : "'" + a.name + "'";
    if (a.name == "nil" || a.name == "true" || a.name == "false") return a.name;
    if (a.name.rfind("Elixir.", 0) == 0) return a.name.substr(7);
    return plain_atom(a.name, true) ? ":" + a.name : ":" + quoted(a.name);
  }
  std::string operator()(const Binary& b) const {
    if (printable(b.bytes())) return elixir ? quoted(b.bytes()) : "<<" + quoted(b.bytes()) + ">>";
    return bytes_list(b.bytes());
  }
  std::string operator()(const Pid& p) const {
    return "#PID<" + p.node + "." + std::to_string(p.num) + "." + std::to_string(p.serial) + ">";
  }
  std::string operator()(const Ref& r) const {
    std::string out = "#Reference<" + r.node;
    for (auto id : r.ids) out += "." + std::to_string(id);
    return out + ">";
  }
  std::string operator()(const Tuple& t) const { return "{" + items(t.items) + "}"; }
  std::string operator()(const List& l) const {
    std::string out = "[" + items(l.items);
    if (!l.tail.empty()) out += " | " + std::visit(*this, l.tail.front().value);
    return out + "]";
  }
  std::string operator()(const Map& m) const {
    std::string out = elixir ? "%{" : "#{";
    for (size_t k = 0; k < m.entries.size(); ++k) {
      if (k) out += ", ";
      out += std::visit(*this, m.entries[k].first.value) + " => " + std::visit(*this, m.entries[k].second.value);
    }
    return out + "}";
  }
  std::string operator()(const Raw& r) const { return "#Term<" + std::to_string(r.encoded.size()) + " bytes>"; }

  std::string items(const std::vector<Term>& v) const {
    std::string out;
    for (size_t k = 0; k < v.size(); ++k) {
      if (k) out += ", ";
      out += std::visit(*this, v[k].value);
    }
    return out;
  }
};

}  // namespace

std::string to_erlang_string(const Term& t) { return std::visit(Renderer{false}, t.value); }
std::string to_elixir_string(const Term& t) { return std::visit(Renderer{true}, t.value); }

}  // namespace chat::term
