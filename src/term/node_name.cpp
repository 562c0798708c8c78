#include "chat/term/node_name.hpp"

#include <array>

namespace chat::term {

namespace {

// The names made last on this thread. A node talks to a handful of peers at a time, and a
// frame's pids and references name one or two of them; eight cover that without letting a
// peer that names thousands of nodes grow anything.
constexpr size_t kRecent = 8;
struct Recent {
  std::array<NodeName, kRecent> names;
  size_t next = 0;
};

}  // namespace

NodeName::NodeName(std::string_view text) {
  if (text.empty()) return;
  thread_local Recent recent;
  for (const auto& n : recent.names) {
    if (n.rep_ != nullptr && n.rep_->text == text) {
      rep_ = n.rep_;
      retain();
      return;
    }
  }
  rep_ = new Rep{1, std::string(text)};
  recent.names[recent.next] = *this;
  recent.next = (recent.next + 1) % kRecent;
}

const std::string& NodeName::empty_text() noexcept {
  static const std::string empty;
  return empty;
}

}  // namespace chat::term
