// Chat lines go to stdout as bare lines, like the Elixir app's IO.puts. They are collected and
// written in one block per loop iteration (flush), in arrival order.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace chat::service {

class Output {
 public:
  explicit Output(std::FILE* out = stdout) : out_(out) {}
  void line(std::string_view text);
  void flush();
  // Told of every line after it is queued (the web feed listens here).
  void on_line(std::function<void(std::string_view)> fn) { listener_ = std::move(fn); }
  [[nodiscard]] uint64_t lines() const { return lines_; }

 private:
  static constexpr size_t kDirect = 64 * 1024;
  std::FILE* out_;
  std::string buffer_;
  uint64_t lines_ = 0;
  std::function<void(std::string_view)> listener_;
};

}  // namespace chat::service
