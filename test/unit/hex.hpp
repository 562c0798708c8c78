#pragma once
#include <initializer_list>
#include <string>
#include <string_view>

namespace test {

inline std::string unhex(std::string_view h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

inline std::string hex(std::string_view b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Bytes written as numbers, as the erts chapter writes frames.
inline std::string bytes(std::initializer_list<int> b) {
  std::string out;
  for (const int c : b) out.push_back(static_cast<char>(c));
  return out;
}

}  // namespace test
