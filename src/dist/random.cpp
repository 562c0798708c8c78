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

}  // namespace chat::dist
