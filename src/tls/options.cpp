// Option by option, what OTP's ssl (ssl.erl, handle_option/4) and inet_tls_dist accept in an
// -ssl_dist_optfile, mapped to what Context does with OpenSSL. An option not handled below is
// an error that names it.
#include "chat/tls/options.hpp"

#include <algorithm>
#include <functional>
#include <map>

#include "chat/term/text.hpp"

namespace chat::tls {

namespace {

using term::Term;

// A term as a person would write it in the optfile, for messages.
std::string show(const Term& t) {
  std::string s;
  if (const auto* l = t.get<term::List>(); l != nullptr && !l->items.empty() && term::text_bytes(t, &s)) {
    if (std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) return "\"" + s + "\"";
  }
  if (const auto* r = t.get<term::Raw>(); r != nullptr && !r->encoded.empty() && r->encoded[0] == 113) return "a fun";
  std::string out = term::to_erlang_string(t);
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

struct Reader {
  Side side;
  SideOptions* out;
  std::string error;

  [[nodiscard]] const char* side_name() const { return side == Side::kServer ? "server" : "client"; }

  bool fail(const std::string& key, const std::string& why) {
    error = std::string("{") + side_name() + ", [...]}: " + key + ": " + why;
    return false;
  }

  bool text(const std::string& key, const Term& v, std::string* into, bool allow_empty = false) {
    if (!term::text_bytes(v, into)) return fail(key, "expected a string, got " + show(v));
    if (!allow_empty && into->empty()) return fail(key, "must not be empty");
    if (into->find('\0') != std::string::npos) return fail(key, "contains a NUL byte");
    return true;
  }

  bool boolean(const std::string& key, const Term& v, bool* into) {
    if (v.is_atom("true")) {
      *into = true;
    } else if (v.is_atom("false")) {
      *into = false;
    } else {
      return fail(key, "expected true or false, got " + show(v));
    }
    return true;
  }

  bool only(Side wanted, const std::string& key) {
    if (side == wanted) return true;
    return fail(key, std::string("is a ") + (wanted == Side::kServer ? "server" : "client") +
                         " option (ssl refuses it here too)");
  }

  bool option(const std::string& key, const Term& v) {
    if (key == "certfile") return text(key, v, &out->certfile);
    if (key == "keyfile") return text(key, v, &out->keyfile);
    if (key == "cacertfile") return text(key, v, &out->cacertfile);
    if (key == "password") return text(key, v, &out->password, true);
    if (key == "dhfile") return only(Side::kServer, key) && text(key, v, &out->dhfile);
    if (key == "verify") {
      if (v.is_atom("verify_peer")) {
        out->verify = Verify::kPeer;
      } else if (v.is_atom("verify_none")) {
        out->verify = Verify::kNone;
      } else {
        return fail(key, "expected verify_peer or verify_none, got " + show(v));
      }
      return true;
    }
    if (key == "fail_if_no_peer_cert") return only(Side::kServer, key) && boolean(key, v, &out->fail_if_no_peer_cert);
    if (key == "depth") {
      const auto* n = v.get<int64_t>();
      if (n == nullptr || *n < 0 || *n > 255) return fail(key, "expected an integer 0..255, got " + show(v));
      out->depth = static_cast<int>(*n);
      return true;
    }
    if (key == "server_name_indication") {
      if (!only(Side::kClient, key)) return false;
      if (v.is_atom("disable")) {
        out->sni = Sni::kDisable;
        return true;
      }
      out->sni = Sni::kName;
      return text(key, v, &out->sni_name);
    }
    if (key == "versions") return versions(key, v);
    if (key == "ciphers") return ciphers(key, v);
    if (key == "honor_cipher_order") return only(Side::kServer, key) && boolean(key, v, &out->honor_cipher_order);
    if (key == "reuse_sessions") {
      if (v.is_atom("save")) {
        if (!only(Side::kClient, key)) return false;
        out->reuse_sessions = true;
        return true;
      }
      return boolean(key, v, &out->reuse_sessions);
    }
    if (key == "secure_renegotiate") {
      bool on = true;
      if (!boolean(key, v, &on)) return false;
      // OpenSSL always uses RFC 5746 renegotiation where the peer supports it.
      if (!on) return fail(key, "false (insecure legacy renegotiation) is not supported");
      return true;
    }
    if (key == "verify_fun") {
      const auto* t = v.tuple(2);
      if (t == nullptr || side != Side::kServer || (*t)[0] != term::external_fun("inet_tls_dist", "verify_client", 3)) {
        return fail(key, "only {fun inet_tls_dist:verify_client/3, _} on the server side is supported");
      }
      out->verify_client_fun = true;
      return true;
    }
    if (key == "ktls") {
      bool on = false;
      if (!boolean(key, v, &on)) return false;
      if (on) return fail(key, "true is not supported (no kernel TLS here)");
      return true;
    }
    if (key == "crl_check") {
      bool on = false;
      if (!boolean(key, v, &on)) return fail(key, "CRL checking is not supported");
      if (on) return fail(key, "CRL checking is not supported");
      return true;
    }
    // Meaningful only inside a BEAM: a process that hibernates, ssl's own logger; the node's
    // logging follows --log-level. Accepted (the same file serves both), and logged.
    if (key == "hibernate_after") {
      if (v.get<int64_t>() == nullptr && !v.is_atom("infinity")) {
        return fail(key, "expected an integer or infinity, got " + show(v));
      }
      out->no_effect.push_back(key);
      return true;
    }
    if (key == "log_level" || key == "log_alert") {
      if (v.get<term::Atom>() == nullptr) return fail(key, "expected an atom, got " + show(v));
      out->no_effect.push_back(key);
      return true;
    }
    if (key == "erl_dist") return true;  // inet_tls_dist sets it itself
    return fail(key, "not supported by chat-node (supported: certfile, keyfile, cacertfile, password, verify, "
                     "fail_if_no_peer_cert, depth, server_name_indication, versions, ciphers, "
                     "honor_cipher_order, reuse_sessions, secure_renegotiate, dhfile, verify_fun, ktls, "
                     "crl_check, hibernate_after, log_level, log_alert)");
  }

  bool versions(const std::string& key, const Term& v) {
    const auto* l = v.get<term::List>();
    if (l == nullptr || !l->tail.empty() || l->items.empty()) {
      return fail(key, "expected a non-empty list such as ['tlsv1.3', 'tlsv1.2'], got " + show(v));
    }
    for (const auto& item : l->items) {
      const auto* a = item.get<term::Atom>();
      if (a == nullptr) return fail(key, "expected atoms such as 'tlsv1.2', got " + show(item));
      if (a->name == "tlsv1" || a->name == "tlsv1.1" || a->name == "sslv3") {
        return fail(key, "'" + a->name + "' is not supported (TLS 1.2 and 1.3 only)");
      }
      if (a->name != "tlsv1.2" && a->name != "tlsv1.3") return fail(key, "unknown version " + show(item));
      out->versions.push_back(a->name);
    }
    return true;
  }

  // A cipher string ("A:B"), or a list of names. ssl also takes maps and tuples describing
  // suites; those have no OpenSSL equivalent here and are refused.
  bool ciphers(const std::string& key, const Term& v) {
    std::string s;
    std::vector<std::string> names;
    if (term::text_bytes(v, &s)) {
      names.push_back(s);
    } else if (const auto* l = v.get<term::List>(); l != nullptr && l->tail.empty()) {
      for (const auto& item : l->items) {
        std::string name;
        if (!term::text_bytes(item, &name)) {
          return fail(key, "only cipher names (strings) are supported, got " + show(item));
        }
        names.push_back(name);
      }
    } else {
      return fail(key, "expected a list of cipher names, got " + show(v));
    }
    for (const auto& n : names) {
      size_t start = 0;
      while (start <= n.size()) {
        const size_t end = std::min(n.find(':', start), n.size());
        if (end > start) out->ciphers.push_back(n.substr(start, end - start));
        start = end + 1;
      }
    }
    if (out->ciphers.empty()) return fail(key, "no cipher named");
    return true;
  }
};

bool read_side(const Term& list, Side side, SideOptions* out, std::string* error) {
  Reader r{side, out, {}};
  const auto* l = list.get<term::List>();
  if (l == nullptr || !l->tail.empty()) {
    *error = std::string("{") + r.side_name() + ", Options}: Options must be a list, got " + show(list);
    return false;
  }
  std::map<std::string, bool> seen;
  for (const auto& opt : l->items) {
    const auto* t = opt.tuple(2);
    const term::Atom* key = t ? (*t)[0].get<term::Atom>() : nullptr;
    if (key == nullptr) {
      *error = std::string("{") + r.side_name() + ", [...]}: expected {Option, Value}, got " + show(opt);
      return false;
    }
    // ssl would take one of the two silently; which one differs between OTP releases.
    if (seen[key->name]) {
      *error = std::string("{") + r.side_name() + ", [...]}: " + key->name + " is given twice";
      return false;
    }
    seen[key->name] = true;
    if (!r.option(key->name, (*t)[1])) {
      *error = r.error;
      return false;
    }
  }
  return true;
}

}  // namespace

OptfileResult parse_optfile(std::string_view text) {
  OptfileResult r;
  term::TextLimits limits;
  limits.max_bytes = 256U << 10U;
  limits.max_depth = 16;
  limits.max_items = 64U << 10U;
  const auto parsed = term::parse_terms(text, limits);
  if (!parsed.ok()) {
    r.error = "line " + std::to_string(parsed.line) + ": " + parsed.error;
    return r;
  }
  // ssl_dist_sup evaluates exactly one expression.
  if (parsed.terms.size() != 1) {
    r.error = parsed.terms.empty() ? "no term in the file (expected [{server, [...]}, {client, [...]}].)"
                                   : "more than one term in the file (expected one list ending with '.')";
    return r;
  }
  const auto* top = parsed.terms.front().get<term::List>();
  if (top == nullptr || !top->tail.empty()) {
    r.error = "expected a list [{server, [...]}, {client, [...]}], got " + show(parsed.terms.front());
    return r;
  }
  for (const auto& entry : top->items) {
    const auto* t = entry.tuple(2);
    const bool server = t != nullptr && (*t)[0].is_atom("server");
    const bool client = t != nullptr && (*t)[0].is_atom("client");
    if (!server && !client) {
      r.error = "expected {server, [...]} or {client, [...]}, got " + show(entry);
      return r;
    }
    bool& has = server ? r.options.has_server : r.options.has_client;
    if (has) {
      r.error = std::string(server ? "server" : "client") + " options are given twice";
      return r;
    }
    has = true;
    if (!read_side((*t)[1], server ? Side::kServer : Side::kClient, server ? &r.options.server : &r.options.client,
                   &r.error)) {
      return r;
    }
  }
  return r;
}

DistOptions mutual_defaults() {
  DistOptions d;
  d.has_server = d.has_client = true;
  d.server.verify = Verify::kPeer;
  d.server.fail_if_no_peer_cert = true;
  d.client.verify = Verify::kPeer;
  return d;
}

std::string render_optfile(const std::string& certfile_path, const std::string& keyfile_path,
                           const std::string& cacertfile_path) {
  const auto quote = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out;
  };
  const std::string certfile = quote(certfile_path);
  const std::string keyfile = quote(keyfile_path);
  const std::string cacertfile = quote(cacertfile_path);
  const auto side = [&](bool server) {
    return std::string("[{certfile, \"") + certfile + "\"},\n           {keyfile, \"" + keyfile +
           "\"},\n           {cacertfile, \"" + cacertfile + "\"},\n           {verify, verify_peer}" +
           (server ? ",\n           {fail_if_no_peer_cert, true}" : "") + ",\n           {secure_renegotiate, true}]";
  };
  return "%% Written by chat-node tls-cert: the TLS distribution options of this node, for\n"
         "%% erl -proto_dist inet_tls -ssl_dist_optfile THIS_FILE (and for chat-node alike).\n"
         "[{server, " + side(true) + "},\n {client, " + side(false) + "}].\n";
}

}  // namespace chat::tls
