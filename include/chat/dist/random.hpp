// Random bytes from the kernel's CSPRNG (getrandom(2)), for handshake challenges and cookies.
// Used instead of OpenSSL's RAND_bytes, whose DRBG and provider set-up cost the idle node
// about a megabyte of resident memory for four bytes per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace chat::dist {

// Fills buf with size bytes; false (buf partly filled) only if the kernel has no randomness
// to give (getrandom(2) failing with something other than EINTR, e.g. ENOSYS).
bool random_bytes(void* buf, size_t size);

// A cookie of length characters from A-Z a-z 0-9 _ - (64 symbols, so one byte maps to one
// without bias), never starting with '-'; nullopt if fill fails. fill is random_bytes except
// in tests.
std::optional<std::string> make_cookie(size_t length, bool (*fill)(void*, size_t) = random_bytes);

}  // namespace chat::dist
