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

namespace {

constexpr uint8_t kDistHeader = 68;  // DIST_HEADER: the normal, unfragmented header
constexpr size_t kMaxRefs = 255;    // NumberOfAtomCacheRefs is one byte

}  // namespace

bool AtomCache::read(std::string_view frame, size_t* offset, std::vector<const std::string*>& refs) {
  refs.clear();
  size_t at = *offset;
  const auto byte = [&](size_t k) -> unsigned { return static_cast<uint8_t>(frame[k]); };
  const auto has = [&](size_t n) { return at <= frame.size() && frame.size() - at >= n; };
  if (!has(1)) return false;
  const size_t count = byte(at++);
  if (count == 0) {  // no Flags and no AtomCacheRefs follow
    *offset = at;
    return true;
  }
  // Half a byte of flags per reference, low half first, then one more half byte whose lowest
  // bit says whether new atoms' lengths take two bytes.
  const size_t flags_at = at;
  if (!has(count / 2 + 1)) return false;
  at += count / 2 + 1;
  const auto flags = [&](size_t k) { return (byte(flags_at + k / 2) >> (4U * (k % 2))) & 0xfU; };
  const bool long_atoms = (flags(count) & 1U) != 0;
  for (size_t k = 0; k < count; ++k) {
    const unsigned f = flags(k);
    if (!has(1)) return false;
    const auto index = static_cast<uint16_t>(((f & 7U) << 8U) | byte(at++));
    if ((f & 8U) == 0) {  // an entry an earlier header set
      const auto it = entries_.find(index);
      if (it == entries_.end()) return false;
      refs.push_back(&it->second);
      continue;
    }
    size_t len = 0;
    if (long_atoms) {
      if (!has(2)) return false;
      len = (byte(at) << 8U) | byte(at + 1);
      at += 2;
    } else {
      if (!has(1)) return false;
      len = byte(at++);
    }
    if (!has(len)) return false;
    const std::string_view text = frame.substr(at, len);
    if (!term::valid_atom_text(text)) return false;
    at += len;
    // An entry named earlier in this same header keeps its address and takes the new text;
    // only a peer that breaks the protocol sends that.
    std::string& entry = entries_[index];
    entry.assign(text);
    refs.push_back(&entry);
  }
  *offset = at;
  return true;
}

namespace {

// The tags a plain send's control opens with: {Op, ...} as a small tuple and integer.
constexpr uint8_t kSmallTuple = 104;   // SMALL_TUPLE_EXT
constexpr uint8_t kSmallInteger = 97;  // SMALL_INTEGER_EXT

// The control of a plain send at frame[*offset] (Send), read by hand in the forms peers use
// (NEW_PID_EXT, SMALL_ATOM_UTF8_EXT or an atom cache reference), with the checks the term walk
// makes. False, with *budget untouched, for any other control or form: the general path
// then decides, so nothing is accepted here that it would refuse.
class SendReader {
 public:
  SendReader(std::string_view frame, size_t at, term::AtomRefs atoms) : frame_(frame), at_(at), atoms_(atoms) {}

  // Fills `out` (left empty on false). Its parts are read straight into it: a Send built
  // aside and copied in cost more than the reading (its fields, stored piecewise, are loaded
  // whole right after, which the CPU cannot forward from its store buffer).
  bool read(size_t* budget, std::optional<Send>& out) {
    if (!has(4) || byte(at_) != kSmallTuple || byte(at_ + 2) != kSmallInteger) return false;
    const size_t arity = byte(at_ + 1);
    const auto op = static_cast<Op>(byte(at_ + 3));
    const bool named = op == Op::kRegSend && arity == 4;
    if (!named && !((op == Op::kSendSender || op == Op::kSend) && arity == 3)) return false;
    at_ += 4;
    Send& s = out.emplace();
    s.op = op;
    if (!read_parts(s, named)) {
      out.reset();
      return false;
    }
    // What the walk would charge: a slot for the tuple and each element, and the heap text
    // of the names too long for a string's own buffer.
    const auto* name = std::get_if<std::string_view>(&s.to);
    const size_t cost = (1 + arity) * sizeof(term::Term) + heap(s.from.node) +
                        (name != nullptr ? heap(*name) : heap(std::get<PidView>(s.to).node));
    if (cost > *budget) {
      out.reset();
      return false;
    }
    *budget -= cost;
    return true;
  }
  [[nodiscard]] size_t offset() const { return at_; }

 private:
  // {6, From, _, ToName}, {22, From, To} or {2, _, To}, from From on.
  bool read_parts(Send& s, bool named) {
    std::string_view unused;
    if (named) {
      std::string_view name;
      if (!pid(s.from) || !atom(unused) || !atom(name)) return false;
      s.to = name;
      return true;
    }
    auto& to = s.to.emplace<PidView>();
    if (s.op == Op::kSend) {
      if (!atom(unused) || !pid(to)) return false;
      s.from = to;
      return true;
    }
    return pid(s.from) && pid(to);
  }
  static size_t heap(std::string_view text) { return text.size() > term::kShortString ? text.size() + 1 : 0; }
  [[nodiscard]] bool has(size_t n) const { return n <= frame_.size() - at_; }
  [[nodiscard]] uint8_t byte(size_t i) const { return static_cast<uint8_t>(frame_[i]); }
  [[nodiscard]] uint32_t u32(size_t i) const {
    return (uint32_t{byte(i)} << 24U) | (uint32_t{byte(i + 1)} << 16U) | (uint32_t{byte(i + 2)} << 8U) | byte(i + 3);
  }

  bool atom(std::string_view& text) {
    constexpr uint8_t kSmallAtomUtf8 = 119;
    constexpr uint8_t kAtomCacheRef = 82;
    if (!has(2)) return false;
    const uint8_t tag = byte(at_);
    const size_t n = byte(at_ + 1);
    if (tag == kAtomCacheRef) {
      if (n >= atoms_.size()) return false;
      text = *atoms_[n];  // checked when the header set it
      at_ += 2;
      return true;
    }
    if (tag != kSmallAtomUtf8 || !has(2 + n)) return false;
    text = frame_.substr(at_ + 2, n);
    if (!term::valid_utf8(text)) return false;
    at_ += 2 + n;
    return true;
  }

  bool pid(PidView& out) {
    constexpr uint8_t kNewPid = 88;
    if (!has(1) || byte(at_) != kNewPid) return false;
    ++at_;
    std::string_view node;
    if (!atom(node) || node.find('\0') != std::string_view::npos || !has(12)) return false;
    out = PidView{node, u32(at_), u32(at_ + 4), u32(at_ + 8)};
    at_ += 12;
    return true;
  }

  std::string_view frame_;
  size_t at_;
  term::AtomRefs atoms_;
};

// The commonest payload, a binary under kSharedMin that is all of `rest` (a chat line): its
// bytes, to be made directly. nullopt for any other payload.
std::optional<std::string_view> small_binary(std::string_view rest) {
  constexpr uint8_t kBinary = 109;  // BINARY_EXT
  if (rest.size() < 5 || static_cast<uint8_t>(rest[0]) != kBinary) return std::nullopt;
  const size_t n = rest.size() - 5;
  if (n >= term::Binary::kSharedMin || frame_length(rest.data() + 1) != n) return std::nullopt;
  return rest.substr(5);
}

}  // namespace

term::Term Message::control_term() const {
  if (!send) return control;
  if (const auto* name = std::get_if<std::string_view>(&send->to)) {
    return term::tuple(
        {term::Term{static_cast<int64_t>(Op::kRegSend)}, send->from.pid(), term::atom(""), term::atom(std::string(*name))});
  }
  const auto to = std::get<PidView>(send->to).pid();
  if (send->op == Op::kSend) return term::tuple({term::Term{static_cast<int64_t>(Op::kSend)}, term::atom(""), to});
  return term::tuple({term::Term{static_cast<int64_t>(Op::kSendSender)}, send->from.pid(), to});
}

Message::Message() = default;

term::Term Message::take_payload() {
  if (binary) return term::Binary(std::string(*binary));
  return std::move(*payload);
}

namespace {

// parse_message's work, into `m`; false for a frame it refuses.
bool read_message(Message& m, std::string_view frame, const term::Limits& limits,
                  const std::shared_ptr<const void>& owner, bool* over_budget, AtomCache* cache, bool by_hand) {
  if (frame.size() < 2) return false;
  const auto first = static_cast<uint8_t>(frame[0]);
  const auto second = static_cast<uint8_t>(frame[1]);
  // A frame's atoms: at most kMaxRefs, kept where no allocation is needed.
  thread_local std::vector<const std::string*> refs = [] {
    std::vector<const std::string*> v;
    v.reserve(kMaxRefs);
    return v;
  }();
  refs.clear();
  size_t offset = 2;
  if (cache == nullptr) {
    if (first != kPassThrough || second != kVersionMagic) return false;
  } else {
    if (first != kVersionMagic || second != kDistHeader || !cache->read(frame, &offset, refs)) return false;
  }
  const term::AtomRefs atoms(refs);
  size_t budget = decode_budget(frame.size());
  const auto refused = [&] {
    if (over_budget != nullptr) *over_budget = budget == 0;
    return false;
  };
  SendReader send(frame, offset, atoms);
  if (by_hand && send.read(&budget, m.send)) {
    offset = send.offset();
  } else {
    auto control = term::decode_at(frame, &offset, limits, owner, &budget, atoms);
    if (!control) return refused();
    if (control->get<term::Tuple>() == nullptr) return false;
    m.control = std::move(*control);
  }
  if (offset == frame.size()) return true;
  if (cache == nullptr) {
    if (static_cast<uint8_t>(frame[offset]) != kVersionMagic) return false;
    ++offset;
  }
  if (auto bytes = small_binary(frame.substr(offset))) {
    // What the walk would charge: its slot, and its bytes past a string's own buffer.
    const size_t cost = sizeof(term::Term) + (bytes->size() <= term::kShortString ? 0 : bytes->size() + 1);
    if (cost > budget) {
      budget = 0;
      return refused();
    }
    if (m.send) {
      m.binary = *bytes;
    } else {
      m.payload.emplace(term::Binary(std::string(*bytes)));
    }
    return true;
  }
  auto payload = term::decode_at(frame, &offset, limits, owner, &budget, atoms);
  if (!payload) return refused();
  if (offset != frame.size()) return false;
  m.payload = std::move(*payload);
  return true;
}

}  // namespace

std::optional<Message> parse_message(std::string_view frame, const term::Limits& limits,
                                     const std::shared_ptr<const void>& owner, bool* over_budget, AtomCache* cache,
                                     bool by_hand) {
  if (over_budget != nullptr) *over_budget = false;
  // One object, returned from one place: built where the caller keeps it, not moved there.
  std::optional<Message> result(std::in_place);
  if (!read_message(*result, frame, limits, owner, over_budget, cache, by_hand)) result.reset();
  return result;
}

namespace {

void put_length(char* at, size_t len) {
  for (size_t k = 0; k < 4; ++k) at[k] = static_cast<char>((len >> (24U - 8U * k)) & 0xffU);
}

// Where a frame's length goes, kept and filled in by end_frame once the terms are encoded;
// then the form's opening: the pass-through byte, or a header naming no atoms (131, 68, 0).
size_t begin_frame(term::Sink& out, FrameForm form) {
  const size_t at = out.size();
  std::string& start = out.text();
  start.append(4, '\0');
  if (form == FrameForm::kPassThrough) {
    start.push_back(static_cast<char>(kPassThrough));
  } else {
    const char header[3] = {static_cast<char>(kVersionMagic), static_cast<char>(kDistHeader), 0};
    start.append(header, sizeof header);
  }
  return at;
}

void end_frame(term::Sink& out, size_t at) {
  char head[4];
  put_length(head, out.size() - at - 4);
  out.patch(at, {head, sizeof head});
}

// A term of the frame: with a version byte in the pass-through form, without in the other.
void put_term(term::Sink& out, const term::Term& t, FrameForm form) {
  if (form == FrameForm::kPassThrough) {
    term::encode_with_version(t, out);
  } else {
    term::encode_to(t, out);
  }
}

}  // namespace

void append_frame(term::Sink& out, const term::Term& control, const term::Term* payload, FrameForm form) {
  const size_t at = begin_frame(out, form);
  put_term(out, control, form);
  if (payload != nullptr) put_term(out, *payload, form);
  end_frame(out, at);
}

term::Term SendParts::control() const {
  const auto code = term::Term{static_cast<int64_t>(op)};
  if (op == Op::kRegSend) return term::tuple({code, *from, term::atom(""), term::atom(std::string(name))});
  if (op == Op::kAliasSend) return term::tuple({code, *from, *alias});
  return term::tuple({code, term::atom(""), *to});
}

void append_send_frame(term::Sink& out, const SendParts& send, const term::Term& payload, FrameForm form) {
  const term::Pid& pid = send.op == Op::kSend ? *send.to : *send.from;
  if (pid.node.size() > UINT8_MAX || send.name.size() > UINT8_MAX ||
      (send.alias != nullptr && send.alias->node.size() > UINT8_MAX)) {
    // Written the way the encoder writes such atoms (ATOM_UTF8_EXT); no peer sends them.
    append_frame(out, send.control(), &payload, form);
    return;
  }
  const size_t at = begin_frame(out, form);
  std::string& text = out.text();
  if (form == FrameForm::kPassThrough) text.push_back(static_cast<char>(kVersionMagic));
  const auto op = static_cast<char>(send.op);
  if (send.op == Op::kRegSend) {
    const char head[4] = {static_cast<char>(kSmallTuple), 4, static_cast<char>(kSmallInteger), op};
    text.append(head, sizeof head);
    term::append_small_pid(text, pid);
    term::append_small_atom(text, "");
    term::append_small_atom(text, send.name);
  } else if (send.op == Op::kAliasSend) {
    const char head[4] = {static_cast<char>(kSmallTuple), 3, static_cast<char>(kSmallInteger), op};
    text.append(head, sizeof head);
    term::append_small_pid(text, pid);
    term::append_small_ref(text, *send.alias);
  } else {
    const char head[4] = {static_cast<char>(kSmallTuple), 3, static_cast<char>(kSmallInteger), op};
    text.append(head, sizeof head);
    term::append_small_atom(text, "");
    term::append_small_pid(text, pid);
  }
  put_term(out, payload, form);
  end_frame(out, at);
}

void append_frame(std::string& out, const term::Term& control, const term::Term* payload, FrameForm form) {
  term::Sink sink(out);
  append_frame(sink, control, payload, form);
}

std::optional<std::string> to_header_form(std::string_view frames) {
  std::string out;
  out.reserve(frames.size() + frames.size() / 16);
  size_t at = 0;
  while (frames.size() - at >= 4) {
    const size_t len = frame_length(frames.data() + at);
    const std::string_view frame = frames.substr(at + 4, len);
    at += 4 + frame.size();
    if (frame.empty()) {  // a tick
      out.append(4, '\0');
      continue;
    }
    // <<112, 131, Control, [131, Payload]>> as append_frame wrote it.
    const auto control = frame.size() > 2 ? term::encoded_size(frame, 2, SIZE_MAX) : std::nullopt;
    if (!control) return std::nullopt;
    const std::string_view body = frame.substr(2, *control);
    const std::string_view rest = frame.substr(std::min(frame.size(), 2 + *control + 1));
    const size_t head = out.size();
    out.append(4, '\0');
    out.push_back(static_cast<char>(kVersionMagic));
    out.push_back(static_cast<char>(kDistHeader));
    out.push_back('\0');
    out.append(body);
    out.append(rest);
    put_length(out.data() + head, out.size() - head - 4);
  }
  return out;
}

void append_tick(std::string& out) { out.append(4, '\0'); }

}  // namespace chat::dist
