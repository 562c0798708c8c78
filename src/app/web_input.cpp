#include "chat/app/web_input.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace chat::app {

std::optional<std::map<std::string, std::string>> parse_flat_json(const std::string& body) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  const auto ws = [&] {
    while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
  };
  const auto str = [&](std::string& v) -> bool {
    if (i >= body.size() || body[i] != '"') return false;
    ++i;
    while (i < body.size() && body[i] != '"') {
      char c = body[i++];
      if (c == '\\') {
        if (i >= body.size()) return false;
        const char e = body[i++];
        switch (e) {
          case 'n': v += '\n'; break;
          case 't': v += '\t'; break;
          case 'r': v += '\r'; break;
          case 'b': v += '\b'; break;
          case 'f': v += '\f'; break;
          case 'u': {
            if (i + 4 > body.size()) return false;
            unsigned cp = 0;
            for (int k = 0; k < 4; ++k) {
              const char h = body[i++];
              cp <<= 4U;
              if (h >= '0' && h <= '9') cp |= static_cast<unsigned>(h - '0');
              else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
              else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
              else return false;
            }
            // Basic plane only; surrogate pairs arrive as two escapes and are rejected.
            if (cp >= 0xd800 && cp <= 0xdfff) return false;
            if (cp < 0x80) {
              v += static_cast<char>(cp);
            } else if (cp < 0x800) {
              v += static_cast<char>(0xc0 | (cp >> 6U));
              v += static_cast<char>(0x80 | (cp & 0x3fU));
            } else {
              v += static_cast<char>(0xe0 | (cp >> 12U));
              v += static_cast<char>(0x80 | ((cp >> 6U) & 0x3fU));
              v += static_cast<char>(0x80 | (cp & 0x3fU));
            }
            break;
          }
          default: v += e;
        }
      } else {
        v += c;
      }
    }
    if (i >= body.size()) return false;
    ++i;
    return true;
  };
  ws();
  if (i >= body.size() || body[i++] != '{') return std::nullopt;
  ws();
  if (i < body.size() && body[i] == '}') return out;
  for (;;) {
    std::string key;
    std::string value;
    ws();
    if (!str(key)) return std::nullopt;
    ws();
    if (i >= body.size() || body[i++] != ':') return std::nullopt;
    ws();
    if (!str(value)) return std::nullopt;
    out[key] = value;
    ws();
    if (i < body.size() && body[i] == ',') {
      ++i;
      continue;
    }
    if (i < body.size() && body[i] == '}') {
      ++i;
      ws();
      return i == body.size() ? std::optional(out) : std::nullopt;
    }
    return std::nullopt;
  }
}

namespace {

bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string header(const http::Request& req, const std::string& name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? std::string{} : it->second;
}

}  // namespace

std::optional<std::string> basic_password(std::string_view credentials) {
  if (credentials.empty() || credentials.size() > 1024 || credentials.size() % 4 != 0) return std::nullopt;
  std::string out(credentials.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(credentials.data()),
                                static_cast<int>(credentials.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes the padding stands for.
  size_t len = static_cast<size_t>(n);
  for (size_t k = credentials.size(); k > 0 && credentials[k - 1] == '=' && len > 0; --k) --len;
  out.resize(len);
  const auto colon = out.find(':');
  if (colon == std::string::npos) return std::nullopt;
  return out.substr(colon + 1);
}

bool authorized(const http::Request& req, const std::string& token) {
  if (token.empty()) return true;
  const std::string auth = header(req, "authorization");
  const auto space = auth.find(' ');
  if (space == std::string::npos) return false;
  std::string scheme = auth.substr(0, space);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string_view value = std::string_view(auth).substr(space + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (scheme == "bearer") return same_secret(value, token);
  if (scheme == "basic") {
    const auto password = basic_password(value);
    return password && same_secret(*password, token);
  }
  return false;
}

}  // namespace chat::app
