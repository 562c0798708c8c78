#include "chat/dist/random.hpp"

#include <sys/random.h>

#include <cerrno>

namespace chat::dist {

bool random_bytes(void* buf, size_t size) {
  auto* p = static_cast<unsigned char*>(buf);
  while (size > 0) {
    // Blocks only until the pool is initialised at boot; reads of up to 256 bytes are never
    // short once it is, larger ones may be (and a signal may interrupt a blocked call).
    const ssize_t n = getrandom(p, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::optional<std::string> make_cookie(size_t length, bool (*fill)(void*, size_t)) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  std::string cookie(length, '\0');
  if (!fill(cookie.data(), cookie.size())) return std::nullopt;
  for (char& c : cookie) c = kAlphabet[static_cast<unsigned char>(c) % 64];
  // erl reads `-setcookie -x...` as a flag and quietly takes ~/.erlang.cookie instead, so a
  // BEAM started with `--cookie "$ERLANG_COOKIE"` would be refused by every other node. The
  // first character is drawn again until it is not '-' (still uniform over the other 63).
  while (!cookie.empty() && cookie.front() == '-') {
    unsigned char b = 0;
    if (!fill(&b, 1)) return std::nullopt;
    cookie.front() = kAlphabet[b % 64];
  }
  return cookie;
}

}  // namespace chat::dist
