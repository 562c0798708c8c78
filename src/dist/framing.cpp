#include "chat/dist/framing.hpp"

#include <algorithm>
#include <cstring>

#include "chat/dist/constants.hpp"
#include "chat/term/validate.hpp"

namespace chat::dist {

namespace {

size_t frame_length(const char* at) {
  const auto* p = reinterpret_cast<const uint8_t*>(at);
  return (size_t{p[0]} << 24U) | (size_t{p[1]} << 16U) | (size_t{p[2]} << 8U) | p[3];
}

}  // namespace

void FrameReader::make_room(size_t extra) {
  if (capacity_ - end_ >= extra) return;
  const size_t live = end_ - begin_;
  // Slide the unread bytes to the front when they are few; otherwise grow, at least doubling,
  // so a frame arriving in many small reads is not moved over and over. A lent buffer is
  // never written over: what is unread moves to a new one.
  if (!lent_ && live + extra <= capacity_ && live <= capacity_ / 2) {
    std::memmove(data_.get(), data_.get() + begin_, live);
  } else {
    const size_t capacity = lent_ ? std::max(live + extra, size_t{64})
                                  : std::max({live + extra, 2 * capacity_, size_t{64}});
    auto data = std::make_shared_for_overwrite<char[]>(capacity);
    if (live > 0) std::memcpy(data.get(), data_.get() + begin_, live);
    data_ = std::move(data);
    capacity_ = capacity;
    lent_ = false;
  }
  begin_ = 0;
  end_ = live;
}

void FrameReader::feed(std::string_view bytes) {
  if (bytes.empty()) return;
  // Bytes that start a frame get room for all of it, so its later reads land in place rather
  // than in a buffer that grows (and is copied) under them.
  size_t room = bytes.size();
  if (begin_ == end_ && bytes.size() >= 4) {
    const size_t len = frame_length(bytes.data());
    if (len <= max_frame_) room = std::max(room, 4 + len);
  }
  make_room(room);
  std::memcpy(data_.get() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
}

size_t FrameReader::missing() const {
  const size_t avail = end_ - begin_;
  if (avail < 4) return 0;
  const size_t len = frame_length(data_.get() + begin_);
  if (len > max_frame_ || avail - 4 >= len) return 0;
  return 4 + len - avail;
}

std::span<char> FrameReader::direct_area(size_t min) {
  const size_t m = missing();
  if (m == 0 || 4 + frame_length(data_.get() + begin_) < min) return {};
  make_room(m);
  return {data_.get() + end_, m};
}

std::span<char> FrameReader::header_area() {
  const size_t avail = end_ - begin_;
  if (avail >= 4) return {};
  make_room(4 - avail);
  return {data_.get() + end_, 4 - avail};
}

void FrameReader::commit(size_t n) { end_ += std::min(n, capacity_ - end_); }

void FrameReader::release_if_drained() {
  // Called when the caller is done with every frame handed out: nothing points into the
  // buffer, so a large one can go at once rather than at the next read.
  if (begin_ != end_) return;
  begin_ = end_ = 0;
  if (capacity_ > kKeepCapacity || lent_) {
    lent_ = false;
    data_.reset();
    capacity_ = 0;
  }
}

FrameReader::Status FrameReader::next(std::string_view* frame) {
  const size_t avail = end_ - begin_;
  if (avail < 4) {
    release_if_drained();
    return Status::kNeedMore;
  }
  const size_t len = frame_length(data_.get() + begin_);
  if (len > max_frame_) return Status::kMalformed;
  if (len == 0) {
    begin_ += 4;
    return Status::kTick;
  }
  if (avail - 4 < len) {
    // Room for the whole frame now: its remaining reads then never move what has arrived.
    make_room(4 + len - avail);
    return Status::kNeedMore;
  }
  *frame = std::string_view(data_.get() + begin_ + 4, len);
  begin_ += 4 + len;
  return Status::kFrame;
}

std::shared_ptr<const void> FrameReader::lend() {
  lent_ = true;
  return data_;
}

std::optional<Message> parse_message(std::string_view frame, const term::Limits& limits,
                                     const std::shared_ptr<const void>& owner, bool* over_budget) {
  if (over_budget != nullptr) *over_budget = false;
  if (frame.size() < 2 || static_cast<uint8_t>(frame[0]) != kPassThrough ||
      static_cast<uint8_t>(frame[1]) != kVersionMagic) {
    return std::nullopt;
  }
  size_t budget = decode_budget(frame.size());
  const auto refused = [&]() -> std::optional<Message> {
    if (over_budget != nullptr) *over_budget = budget == 0;
    return std::nullopt;
  };
  size_t offset = 2;
  auto control = term::decode_at(frame, &offset, limits, owner, &budget);
  if (!control) return refused();
  if (control->get<term::Tuple>() == nullptr) return std::nullopt;
  Message m{std::move(*control), std::nullopt};
  if (offset == frame.size()) return m;
  if (static_cast<uint8_t>(frame[offset]) != kVersionMagic) return std::nullopt;
  ++offset;
  auto payload = term::decode_at(frame, &offset, limits, owner, &budget);
  if (!payload) return refused();
  if (offset != frame.size()) return std::nullopt;
  m.payload = std::move(*payload);
  return m;
}

void append_frame(term::Sink& out, const term::Term& control, const term::Term* payload) {
  // The length is known once the terms are encoded: its place is kept and filled in last.
  const size_t at = out.size();
  std::string& start = out.text();
  start.append(4, '\0');
  start.push_back(static_cast<char>(kPassThrough));
  term::encode_with_version(control, out);
  if (payload != nullptr) term::encode_with_version(*payload, out);
  const size_t len = out.size() - at - 4;
  const char head[4] = {static_cast<char>((len >> 24) & 0xff), static_cast<char>((len >> 16) & 0xff),
                        static_cast<char>((len >> 8) & 0xff), static_cast<char>(len & 0xff)};
  out.patch(at, {head, sizeof head});
}

void append_frame(std::string& out, const term::Term& control, const term::Term* payload) {
  term::Sink sink(out);
  append_frame(sink, control, payload);
}

void append_tick(std::string& out) { out.append(4, '\0'); }

}  // namespace chat::dist
