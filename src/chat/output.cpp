#include "chat/chat/output.hpp"

namespace chat::service {

void Output::line(std::string_view text) {
  if (text.size() >= kDirect) {
    // A large message goes straight out rather than through a copy in the buffer.
    flush();
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fputc('\n', out_);
    std::fflush(out_);
  } else {
    buffer_.append(text);
    buffer_.push_back('\n');
  }
  ++lines_;
  if (listener_) listener_(text);
  // Bound the buffer under a burst; the loop flushes the rest before it next waits.
  if (buffer_.size() >= (1U << 16)) flush();
}

void Output::flush() {
  if (buffer_.empty()) return;
  std::fwrite(buffer_.data(), 1, buffer_.size(), out_);
  std::fflush(out_);
  buffer_.clear();
}

}  // namespace chat::service
