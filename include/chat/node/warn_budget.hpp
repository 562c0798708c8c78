// Warnings a peer can cause at will (failed attempts to names it picks, refused connections,
// messages global or the chat services do not expect, name clashes it stages): at most
// kPerSecond of them a second reach the log, which would otherwise be the next thing to fill up
// (stderr is a pipe too, on Heroku the same log router as stdout). The next one that does says
// how many were left out. One budget per node (Node::peer_warnings()), shared by every layer, so
// that an attacker switching from one kind of noise to another gains nothing.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace chat::node {

class WarnBudget {
 public:
  static constexpr uint32_t kPerSecond = 20;
  // nullopt: leave this one out; else how many were left out before it.
  std::optional<uint64_t> take(uint64_t now_ms) {
    if (now_ms - window_ms_ >= 1000) {
      window_ms_ = now_ms;
      used_ = 0;
    }
    if (used_ >= kPerSecond) {
      ++skipped_;
      ++left_out_;
      return std::nullopt;
    }
    ++used_;
    return std::exchange(skipped_, 0);
  }
  static std::string note(uint64_t skipped) {
    return skipped == 0 ? std::string{} : " (" + std::to_string(skipped) + " similar warnings left out before this one)";
  }
  // Lines left out since the start (/status.json, /metrics).
  [[nodiscard]] uint64_t left_out() const { return left_out_; }

  // A log line at `level` within the budget; its arguments are formatted only if it is written
  // (and only if spdlog writes that level at all, which costs no budget otherwise).
  template <typename... Args>
  void log(uint64_t now_ms, spdlog::level::level_enum level, spdlog::format_string_t<Args...> fmt, Args&&... args) {
    if (!spdlog::should_log(level)) return;
    const auto skipped = take(now_ms);
    if (!skipped) return;
    spdlog::log(level, "{}{}", fmt::format(fmt, std::forward<Args>(args)...), note(*skipped));
  }

 private:
  uint64_t window_ms_ = 0;
  uint32_t used_ = 0;
  uint64_t skipped_ = 0;
  uint64_t left_out_ = 0;
};

}  // namespace chat::node
