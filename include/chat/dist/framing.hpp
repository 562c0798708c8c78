// Frames after the handshake: <<Length:32, Data:Length>>, a zero length being a tick.
// Sans-I/O: bytes in, frames out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "chat/dist/constants.hpp"
#include "chat/term/term.hpp"

namespace chat::dist {

class FrameReader {
 public:
  enum class Status { kFrame, kTick, kNeedMore, kMalformed };

  explicit FrameReader(size_t max_frame) : max_frame_(max_frame) {}

  void feed(std::string_view bytes);
  // Where a socket read may put the rest of the frame being received, so a large frame lands
  // in place instead of being copied in by feed(). Empty unless part of a frame of at least
  // `min` bytes (length included) is missing; report what the read wrote with commit().
  std::span<char> direct_area(size_t min);
  // Room for the rest of the next frame's length alone, while it has not all arrived: a caller
  // expecting a large frame reads that first, so the frame then lands in place (direct_area).
  std::span<char> header_area();
  void commit(size_t n);
  // The next complete frame. `frame` stays valid until the next feed(), direct_area() or next().
  Status next(std::string_view* frame);
  // Keeps the buffer of the frame next() returned alive for whoever holds the result (the
  // binaries decoded from a large frame). The reader never writes into that buffer again.
  std::shared_ptr<const void> lend();
  [[nodiscard]] size_t buffered() const { return end_ - begin_; }

 private:
  // Room for `extra` more bytes after the end; moves or regrows the buffer (never zero-filled).
  void make_room(size_t extra);
  void release_if_drained();
  [[nodiscard]] size_t missing() const;
  // A drained buffer larger than this is given back rather than kept for the next frame.
  static constexpr size_t kKeepCapacity = 1U << 20U;
  std::shared_ptr<char[]> data_;
  bool lent_ = false;  // data_ is shared: nothing before end_ may be overwritten
  size_t capacity_ = 0;
  size_t begin_ = 0;  // first unread byte
  size_t end_ = 0;    // one past the last byte received
  size_t max_frame_;
};

// A pid as a frame holds it: the node name is a view into the frame or the connection's atom
// cache, so reading one allocates nothing.
struct PidView {
  std::string_view node;
  uint32_t num = 0;
  uint32_t serial = 0;
  uint32_t creation = 0;
  [[nodiscard]] term::Pid pid() const { return {std::string(node), num, serial, creation}; }
};

// The control of a message to a process, by far the commonest frame: {2, _, To} (SEND),
// {22, From, To} (SEND_SENDER) or {6, From, _, ToName} (REG_SEND). parse_message reads these
// element by element, without building the control tuple and tearing it down again. Its
// views are valid while the frame is, and the atom cache until the next frame is parsed.
struct Send {
  Op op;
  PidView from;  // SEND names no sender: the receiver stands in, as Node::control has it
  std::variant<PidView, std::string_view> to;  // a pid, or REG_SEND's name
};

// One distribution message: a control tuple and, for the ops that carry one, a payload.
struct Message {
  // Defined out of line: an implicit constructor would have every Message made by
  // `optional::emplace()` zero-filled first, a few hundred bytes per message received.
  Message();

  term::Term control;  // the empty list when `send` holds it instead
  // The payload of the ops that carry one. A plain send's small binary payload (a chat line,
  // the commonest message) stays in the frame as `binary` instead, for a receiver that takes
  // the bytes as they are (Process::take_binary): no term is built for it unless one is asked.
  std::optional<term::Term> payload;
  std::optional<std::string_view> binary;
  std::optional<Send> send;
  [[nodiscard]] bool has_payload() const { return payload.has_value() || binary.has_value(); }
  // The payload as a term, moved out of `payload` or made from `binary`; needs has_payload().
  [[nodiscard]] term::Term take_payload();
  // The control tuple, rebuilt when `send` holds it (SEND's unused element as '').
  [[nodiscard]] term::Term control_term() const;
};

// What the terms of one frame may take in memory once decoded: kDecodeFloor plus kDecodeRatio
// times the frame's bytes. Ordinary messages are far below it (a binary of any size shares
// the frame's buffer; a tuple of a few small terms takes a few hundred bytes); a frame built
// to blow up (16 MB holding a list of 16M [], which would take 1.1 GB: a Term is 72 bytes)
// fails as an oversized frame does, after a walk that allocates nothing. A 128 MB frame (the
// default --max-frame-mb) may cost 544 MB at most.
inline constexpr size_t kDecodeFloor = 32U << 20U;
inline constexpr size_t kDecodeRatio = 4;
[[nodiscard]] constexpr size_t decode_budget(size_t frame_bytes) { return kDecodeFloor + kDecodeRatio * frame_bytes; }

// The atoms a peer has put in its atom cache (DFLAG_DIST_HDR_ATOM_CACHE): 8 segments of 256
// entries, each set by a distribution header and named by later ones by its index alone.
// One per connection, for frames in the order they arrive.
class AtomCache {
 public:
  static constexpr size_t kEntries = 2048;
  // Reads the atom cache references of the normal distribution header
  // <<131, 68, NumberOfAtomCacheRefs, Flags, AtomCacheRefs>> at frame[*offset] (just past the
  // 68), storing its new atoms and listing in `refs` the atom each reference index names.
  // False for a malformed header or a reference to an entry never set.
  bool read(std::string_view frame, size_t* offset, std::vector<const std::string*>& refs);
  [[nodiscard]] size_t size() const { return entries_.size(); }

 private:
  // Sparse: a BEAM spreads the atoms it uses over all 2048 indexes by hash, and uses a few.
  std::unordered_map<uint16_t, std::string> entries_;
};

// How a connection's frames start: the pass-through byte 112 and a version byte before each
// term, or (DFLAG_DIST_HDR_ATOM_CACHE negotiated) a distribution header and no version bytes.
enum class FrameForm { kPassThrough, kDistHeader };

// Decodes <<112, 131, Control, [131, Payload]>> or, given the connection's atom cache,
// <<131, 68, Header, Control, [Payload]>>, within decode_budget(frame size) for both terms
// together. nullopt for anything else (either form where the other is due); then
// *over_budget (when given) says whether the budget was the reason. When `owner` keeps the
// frame alive, large binaries stay in it (term::decode_at).
// `by_hand` false leaves every control to the general decoder (no `send`): what the reader by
// hand is checked against.
std::optional<Message> parse_message(std::string_view frame, const term::Limits& limits = {},
                                     const std::shared_ptr<const void>& owner = nullptr, bool* over_budget = nullptr,
                                     AtomCache* cache = nullptr, bool by_hand = true);

// Appends a complete frame (length header included) for control + optional payload. The
// header form names no atom: every atom goes out in full, which any peer decodes.
void append_frame(term::Sink& out, const term::Term& control, const term::Term* payload,
                  FrameForm form = FrameForm::kPassThrough);
void append_frame(std::string& out, const term::Term& control, const term::Term* payload,
                  FrameForm form = FrameForm::kPassThrough);
// A plain send to write, as views into the sender's own data: REG_SEND {6, From, '', Name}
// or SEND {2, '', To}. The node's commonest frame, written without building its control tuple.
struct SendParts {
  Op op = Op::kSend;
  const term::Pid* from = nullptr;  // REG_SEND's and ALIAS_SEND's sender
  const term::Pid* to = nullptr;    // SEND's receiver
  std::string_view name;            // REG_SEND's registered name
  const term::Ref* alias = nullptr;  // ALIAS_SEND's alias: every gen_server reply to an OTP 24+ caller
  static SendParts registered(const term::Pid& from, std::string_view name) {
    return {Op::kRegSend, &from, nullptr, name};
  }
  static SendParts pid(const term::Pid& to) { return {Op::kSend, nullptr, &to, {}}; }
  static SendParts to_alias(const term::Pid& from, const term::Ref& alias) {
    return {Op::kAliasSend, &from, nullptr, {}, &alias};
  }
  // The control tuple these parts stand for.
  [[nodiscard]] term::Term control() const;
};
// The same frame as append_frame(out, send.control(), &payload, form), byte for byte.
void append_send_frame(term::Sink& out, const SendParts& send, const term::Term& payload,
                       FrameForm form = FrameForm::kPassThrough);
// Pass-through frames (as append_frame writes them, ticks included) rewritten in the header
// form, for what was queued before the handshake said which form the peer takes. nullopt if
// one of them is not such a frame.
std::optional<std::string> to_header_form(std::string_view frames);
// A tick: an empty frame.
void append_tick(std::string& out);

}  // namespace chat::dist
