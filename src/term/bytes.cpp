#include "chat/term/bytes.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

namespace chat::term {

SharedBytes::SharedBytes(std::string bytes) {
  auto held = std::make_shared<const std::string>(std::move(bytes));
  view_ = *held;
  owner_ = std::move(held);
}

namespace {
// Maps the pages of a block's first `bytes` in one system call before they are filled.
// Touched one by one, each new page costs a fault: 14 us on this VM, where
// MADV_POPULATE_WRITE maps 8 MB in about 2 ms. Pages already mapped (a block reused from the
// heap) are left as they are; kernels before 5.14 refuse the call, and the pages then fault
// in as before.
void populate(std::string& block, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto start = reinterpret_cast<uintptr_t>(block.data());
  const uintptr_t first = (start + page - 1) & ~(page - 1);
  const uintptr_t end = (start + std::min(bytes, block.capacity())) & ~(page - 1);
  if (end > first) (void)madvise(reinterpret_cast<void*>(first), end - first, MADV_POPULATE_WRITE);
#else
  (void)block;
  (void)bytes;
#endif
}
}  // namespace

std::string& ChunkList::text() {
  constexpr size_t kBlock = 64U << 10U;  // a closed block is never copied by a string growing
  if (chunks_.empty() || chunks_.back().shared || chunks_.back().block.size() >= kBlock) {
    const bool burst = !chunks_.empty() && !chunks_.back().shared;
    push({std::exchange(spare_, {}), {}});
    // In a burst, blocks fill up: room for a full one and the frame that crosses its end,
    // taken at once. Grown by doubling instead, each block was copied through fresh memory
    // and a burst touched twice its size in new pages (14 us a page fault on this VM).
    if (burst && chunks_.back().block.capacity() < 2 * kBlock) {
      chunks_.back().block.reserve(2 * kBlock);
      populate(chunks_.back().block, kBlock);  // what it will surely hold
    }
  }
  return chunks_.back().block;
}

void ChunkList::add(const SharedBytes& bytes) { push({{}, bytes}); }

void ChunkList::push(Chunk chunk) {
  if (!chunks_.empty()) closed_ += chunks_.back().bytes().size();
  chunks_.push_back(std::move(chunk));
}

void ChunkList::patch(size_t at, std::string_view bytes) {
  // What is patched was appended lately, by one call to text(): look for it from the end.
  size_t start = size();
  auto it = chunks_.end();
  while (it != chunks_.begin() && start > at) start -= (--it)->bytes().size();
  if (it == chunks_.end() || it->shared || at < start || at - start + bytes.size() > it->block.size()) return;
  bytes.copy(it->block.data() + (at - start), bytes.size());
}

void ChunkList::splice(ChunkList&& other) {
  for (auto& c : other.take()) push(std::move(c));
}

std::vector<Chunk> ChunkList::take() {
  closed_ = 0;
  return std::exchange(chunks_, {});
}

std::vector<Chunk> ChunkList::take_front(size_t max) {
  const size_t total = size();
  if (total <= max) return take();
  size_t taken = 0;
  size_t whole = 0;  // chunks that go entirely
  while (taken + chunks_[whole].bytes().size() <= max) taken += chunks_[whole++].bytes().size();
  const auto first = chunks_.begin();
  std::vector<Chunk> out(std::make_move_iterator(first), std::make_move_iterator(first + static_cast<ptrdiff_t>(whole)));
  chunks_.erase(first, first + static_cast<ptrdiff_t>(whole));
  if (taken < max) {
    Chunk& c = chunks_.front();
    if (!c.shared) c.shared = SharedBytes(std::exchange(c.block, {}));
    const size_t head = max - taken;
    out.push_back({{}, c.shared.slice(0, head)});
    c.shared = c.shared.slice(head, c.shared.size() - head);
    taken = max;
  }
  closed_ = total - taken - chunks_.back().bytes().size();
  return out;
}

void ChunkList::reuse(std::string block) {
  if (block.capacity() <= spare_.capacity()) return;
  spare_ = std::move(block);
  spare_.clear();
}

}  // namespace chat::term
