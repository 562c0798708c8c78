#include "chat/dist/framing.hpp"

#include "chat/dist/constants.hpp"

namespace chat::dist {

void FrameReader::feed(std::string_view bytes) {
  // Compact once the consumed prefix dominates, so a long-lived connection does not grow;
  // after a large frame, give its memory back instead of keeping the high-water mark.
  if (read_ > 0 && read_ >= buffer_.size() / 2) {
    if (buffer_.capacity() > kKeepCapacity && buffer_.size() - read_ <= kKeepCapacity) {
      std::string rest(buffer_, read_);
      buffer_.swap(rest);
    } else {
      buffer_.erase(0, read_);
    }
    read_ = 0;
  }
  buffer_.append(bytes);
}

void FrameReader::release_if_drained() {
  // Called when the caller is done with every frame handed out: nothing points into the
  // buffer, so a large one can go at once rather than at the next read.
  if (read_ != buffer_.size()) return;
  read_ = 0;
  if (buffer_.capacity() > kKeepCapacity) {
    std::string().swap(buffer_);
  } else {
    buffer_.clear();
  }
}

FrameReader::Status FrameReader::next(std::string_view* frame) {
  const size_t avail = buffer_.size() - read_;
  if (avail < 4) {
    release_if_drained();
    return Status::kNeedMore;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(buffer_.data() + read_);
  const size_t len = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  if (len > max_frame_) return Status::kMalformed;
  if (len == 0) {
    read_ += 4;
    return Status::kTick;
  }
  if (avail - 4 < len) {
    buffer_.reserve(read_ + 4 + len);
    return Status::kNeedMore;
  }
  *frame = std::string_view(buffer_).substr(read_ + 4, len);
  read_ += 4 + len;
  return Status::kFrame;
}

std::optional<Message> parse_message(std::string_view frame, const term::Limits& limits) {
  if (frame.size() < 2 || static_cast<uint8_t>(frame[0]) != kPassThrough ||
      static_cast<uint8_t>(frame[1]) != kVersionMagic) {
    return std::nullopt;
  }
  size_t offset = 2;
  auto control = term::decode_at(frame, &offset, limits);
  if (!control || control->get<term::Tuple>() == nullptr) return std::nullopt;
  Message m{std::move(*control), std::nullopt};
  if (offset == frame.size()) return m;
  if (static_cast<uint8_t>(frame[offset]) != kVersionMagic) return std::nullopt;
  ++offset;
  auto payload = term::decode_at(frame, &offset, limits);
  if (!payload || offset != frame.size()) return std::nullopt;
  m.payload = std::move(*payload);
  return m;
}

void append_frame(std::string& out, const term::Term& control, const term::Term* payload) {
  const size_t header = out.size();
  out.append(4, '\0');
  out.push_back(static_cast<char>(kPassThrough));
  term::encode_with_version(control, out);
  if (payload != nullptr) term::encode_with_version(*payload, out);
  const size_t len = out.size() - header - 4;
  out[header] = static_cast<char>((len >> 24) & 0xff);
  out[header + 1] = static_cast<char>((len >> 16) & 0xff);
  out[header + 2] = static_cast<char>((len >> 8) & 0xff);
  out[header + 3] = static_cast<char>(len & 0xff);
}

void append_tick(std::string& out) { out.append(4, '\0'); }

}  // namespace chat::dist
