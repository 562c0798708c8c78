// A term in a log line, rendered only if the line is written: spdlog formats its arguments
// after the level check, so `spdlog::debug("... {}", term::show(payload))` costs nothing at
// info level, where `term::to_erlang_string(payload)` would render all of a peer's message
// first. The rendering stops at kShowChars (a peer picks the size of its terms).
#pragma once

#include <fmt/format.h>

#include <string_view>

#include "chat/term/term.hpp"

namespace chat::term {

inline constexpr size_t kShowChars = 2000;

struct Show {
  const Term& term;
};

inline Show show(const Term& t) { return Show{t}; }

}  // namespace chat::term

template <>
struct fmt::formatter<chat::term::Show> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(const chat::term::Show& s, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(chat::term::to_erlang_string(s.term, chat::term::kShowChars), ctx);
  }
};
