// Big-endian integer helpers for the wire formats (handshake, EPMD).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace chat::dist {

inline void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
inline void put_u32(std::string& out, uint32_t v) {
  put_u16(out, static_cast<uint16_t>(v >> 16));
  put_u16(out, static_cast<uint16_t>(v & 0xffff));
}
inline void put_u64(std::string& out, uint64_t v) {
  put_u32(out, static_cast<uint32_t>(v >> 32));
  put_u32(out, static_cast<uint32_t>(v & 0xffffffffULL));
}
// Callers check the length first.
inline uint16_t get_u16(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) | static_cast<uint8_t>(s[at + 1]));
}
inline uint32_t get_u32(std::string_view s, size_t at) {
  return (uint32_t{get_u16(s, at)} << 16) | get_u16(s, at + 2);
}
inline uint64_t get_u64(std::string_view s, size_t at) {
  return (uint64_t{get_u32(s, at)} << 32) | get_u32(s, at + 4);
}

inline constexpr uint64_t flag_handshake23() { return 0x1000000; }

}  // namespace chat::dist
