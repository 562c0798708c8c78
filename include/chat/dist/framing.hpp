// Frames after the handshake: <<Length:32, Data:Length>>, a zero length being a tick.
// Sans-I/O: bytes in, frames out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "chat/term/term.hpp"

namespace chat::dist {

class FrameReader {
 public:
  enum class Status { kFrame, kTick, kNeedMore, kMalformed };

  explicit FrameReader(size_t max_frame) : max_frame_(max_frame) {}

  void feed(std::string_view bytes);
  // The next complete frame. `frame` stays valid until the next feed() or next().
  Status next(std::string_view* frame);
  [[nodiscard]] size_t buffered() const { return buffer_.size() - read_; }

 private:
  void release_if_drained();
  static constexpr size_t kKeepCapacity = 1U << 20U;
  std::string buffer_;
  size_t read_ = 0;
  size_t max_frame_;
};

// One distribution message: a control tuple and, for the ops that carry one, a payload.
struct Message {
  term::Term control;
  std::optional<term::Term> payload;
};

// Decodes <<112, 131, Control, [131, Payload]>>. nullopt for anything else.
std::optional<Message> parse_message(std::string_view frame, const term::Limits& limits = {});

// Appends a complete frame (length header included) for control + optional payload.
void append_frame(std::string& out, const term::Term& control, const term::Term* payload);
// A tick: an empty frame.
void append_tick(std::string& out);

}  // namespace chat::dist
