// Chat lines go to stdout as bare lines, like the Elixir app's IO.puts. They are collected and
// written in one block per loop iteration (flush), in arrival order.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace chat::service {

class Output {
 public:
  explicit Output(std::FILE* out = stdout) : out_(out) {}
  void line(std::string_view text);
  void flush();
  [[nodiscard]] uint64_t lines() const { return lines_; }

 private:
  std::FILE* out_;
  std::string buffer_;
  uint64_t lines_ = 0;
};

}  // namespace chat::service
