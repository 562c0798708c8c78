// A node's name as pids and references carry it. Every pid and reference a peer sends names
// its node, and the node copies them into monitors, links, replies and exit signals: as a
// std::string, each copy of a name past 15 bytes (most real ones, `amanda@10.0.1.23`) was a
// heap block. A NodeName shares one immutable block by reference count, and names made from
// text go through a small per-thread table of recent ones, so the names of the peers a node is
// talking to are made once and then only shared.
#pragma once

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace chat::term {

class NodeName {
 public:
  NodeName() noexcept = default;
  NodeName(std::string_view text);                                     // NOLINT(google-explicit-constructor)
  NodeName(const std::string& text) : NodeName(std::string_view(text)) {}  // NOLINT(google-explicit-constructor)
  NodeName(const char* text) : NodeName(std::string_view(text)) {}     // NOLINT(google-explicit-constructor)
  NodeName(const NodeName& o) noexcept : rep_(o.rep_) { retain(); }
  NodeName(NodeName&& o) noexcept : rep_(o.rep_) { o.rep_ = nullptr; }
  NodeName& operator=(const NodeName& o) noexcept {
    if (rep_ != o.rep_) {
      NodeName copy(o);
      std::swap(rep_, copy.rep_);
    }
    return *this;
  }
  NodeName& operator=(NodeName&& o) noexcept {
    std::swap(rep_, o.rep_);
    return *this;
  }
  ~NodeName() { release(); }

  [[nodiscard]] const std::string& str() const noexcept { return rep_ != nullptr ? rep_->text : empty_text(); }
  operator const std::string&() const noexcept { return str(); }  // NOLINT(google-explicit-constructor)
  [[nodiscard]] size_t size() const noexcept { return str().size(); }
  [[nodiscard]] bool empty() const noexcept { return str().empty(); }
  [[nodiscard]] const char* data() const noexcept { return str().data(); }
  [[nodiscard]] const char* c_str() const noexcept { return str().c_str(); }

  friend bool operator==(const NodeName& a, const NodeName& b) noexcept {
    return a.rep_ == b.rep_ || a.str() == b.str();
  }
  friend bool operator==(const NodeName& a, const std::string& b) noexcept { return a.str() == b; }
  friend bool operator==(const NodeName& a, std::string_view b) noexcept { return a.str() == b; }
  friend bool operator==(const NodeName& a, const char* b) noexcept { return a.str() == b; }
  friend std::strong_ordering operator<=>(const NodeName& a, const NodeName& b) noexcept {
    if (a.rep_ == b.rep_) return std::strong_ordering::equal;
    return a.str().compare(b.str()) <=> 0;
  }
  friend std::strong_ordering operator<=>(const NodeName& a, const std::string& b) noexcept {
    return a.str().compare(b) <=> 0;
  }

 private:
  struct Rep {
    std::atomic<uint32_t> refs{1};
    std::string text;
  };
  static const std::string& empty_text() noexcept;
  void retain() const noexcept {
    if (rep_ != nullptr) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    if (rep_ != nullptr && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete rep_;
    rep_ = nullptr;
  }
  Rep* rep_ = nullptr;
};

inline std::string operator+(const std::string& a, const NodeName& b) { return a + b.str(); }
inline std::string operator+(const NodeName& a, const std::string& b) { return a.str() + b; }
inline std::string operator+(const char* a, const NodeName& b) { return a + b.str(); }
inline std::string operator+(const NodeName& a, const char* b) { return a.str() + b; }

}  // namespace chat::term

#if __has_include(<fmt/core.h>)
#include <fmt/core.h>
// Log lines name nodes as text. Written out rather than inherited from the string_view
// formatter, whose members differ between fmt 9 (Debian 12) and fmt 10 (Debian 13).
template <>
struct fmt::formatter<chat::term::NodeName> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename FormatContext>
  auto format(const chat::term::NodeName& n, FormatContext& ctx) const {
    const std::string& s = n.str();
    return std::copy(s.begin(), s.end(), ctx.out());
  }
};
#endif
