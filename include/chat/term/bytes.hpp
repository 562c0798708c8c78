// Bytes shared without copying, as the BEAM shares a large (refc) binary between processes,
// and the sink an encoding goes to. A large binary travels from the frame it arrived in to
// stdout, or from its sender to the socket, without a user-space copy.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chat::term {

// A view into a buffer that stays alive while any holder keeps it; the bytes never change.
class SharedBytes {
 public:
  SharedBytes() = default;
  // Takes the string's buffer (one allocation for the holder, none for the bytes).
  explicit SharedBytes(std::string bytes);
  // A part of a buffer `owner` keeps alive, e.g. a binary inside the frame that brought it.
  SharedBytes(std::shared_ptr<const void> owner, std::string_view view)
      : owner_(std::move(owner)), view_(view) {}

  [[nodiscard]] std::string_view view() const { return view_; }
  [[nodiscard]] size_t size() const { return view_.size(); }
  explicit operator bool() const { return owner_ != nullptr; }
  // n bytes from pos, held by the same owner.
  [[nodiscard]] SharedBytes slice(size_t pos, size_t n) const { return {owner_, view_.substr(pos, n)}; }

 private:
  std::shared_ptr<const void> owner_;
  std::string_view view_;
};

// Bytes queued for writing: a block the writer fills, or shared bytes written where they lie.
struct Chunk {
  std::string block;
  SharedBytes shared;
  [[nodiscard]] std::string_view bytes() const { return shared ? shared.view() : std::string_view(block); }
};

// Where an encoding goes: appended to a string, except that a sink may keep a shared binary
// by reference (a socket's write queue sends it from where it lies).
class Sink {
 public:
  explicit Sink(std::string& text) : text_(&text) {}
  virtual ~Sink() = default;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Where the next bytes are appended. May change after add(), so ask again each time.
  virtual std::string& text() { return *text_; }
  virtual void add(const SharedBytes& bytes) { text_->append(bytes.view()); }
  // Bytes added so far, by either way.
  [[nodiscard]] virtual size_t size() const { return text_->size(); }
  // Overwrites bytes appended with one call to text(), at `at` as size() counts: a length
  // known only once what follows it is encoded.
  virtual void patch(size_t at, std::string_view bytes) { bytes.copy(text_->data() + at, bytes.size()); }

 protected:
  Sink() = default;

 private:
  std::string* text_ = nullptr;
};

// Encoded bytes kept as chunks, in order: blocks the encoder fills and large binaries by
// reference, so holding a frame never copies the binaries in it.
class ChunkList final : public Sink {
 public:
  ChunkList() = default;
  ChunkList(ChunkList&& o) noexcept
      : chunks_(std::exchange(o.chunks_, {})), spare_(std::move(o.spare_)), closed_(std::exchange(o.closed_, 0)) {}
  ChunkList& operator=(ChunkList&&) = delete;
  std::string& text() override;
  void add(const SharedBytes& bytes) override;
  [[nodiscard]] size_t size() const override { return closed_ + (chunks_.empty() ? 0 : chunks_.back().bytes().size()); }
  void patch(size_t at, std::string_view bytes) override;
  [[nodiscard]] bool empty() const { return size() == 0; }
  // Moves the other list's chunks after ours.
  void splice(ChunkList&& other);
  // Every chunk, in order; the list is empty afterwards.
  std::vector<Chunk> take();
  // The chunks that hold the first `max` bytes, or all of them if fewer. A chunk across that
  // boundary is split into two shared views of its bytes, so nothing is copied.
  std::vector<Chunk> take_front(size_t max);
  // A block already used, emptied and kept as the next block to fill if it is the largest
  // offered so far: a writer that hands its written blocks back allocates none in a steady flow.
  void reuse(std::string block);

 private:
  void push(Chunk chunk);
  std::vector<Chunk> chunks_;
  std::string spare_;
  size_t closed_ = 0;  // bytes in the chunks before the last
};

}  // namespace chat::term
