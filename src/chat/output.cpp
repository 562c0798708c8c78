#include "chat/chat/output.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>  // IOV_MAX (GCC 12's <memory> included it on the way, GCC 16's does not)
#include <utility>

namespace chat::service {

namespace {

// Writes every block, in order, with as few writev calls as the reader allows. A reader that
// is gone (EPIPE) or another error costs the lines, never the node.
void write_all(int fd, const std::vector<term::Chunk>& chunks) {
  std::vector<iovec> iov;
  for (const auto& c : chunks) {
    const std::string_view b = c.bytes();
    if (!b.empty()) iov.push_back({const_cast<char*>(b.data()), b.size()});
  }
  size_t first = 0;
  while (first < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    const ssize_t n = ::writev(fd, &iov[first], count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    auto left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (left > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
}

}  // namespace

Output::~Output() {
  if (!writer_.joinable()) {
    // No writer was ever started: what is left is written here rather than dropped.
    std::vector<term::Chunk> rest;
    rest.push_back({std::move(buffer_), {}});
    std::fflush(out_);
    write_all(fileno(out_), rest);
    return;
  }
  flush();
  {
    const std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_one();
  writer_.join();
}

void Output::counted(std::string_view text) {
  ++lines_;
  if (listener_) listener_(text);
}

void Output::line(std::string_view text) {
  buffer_.append(text);
  buffer_.push_back('\n');
  counted(text);
  // Bound the buffer under a burst; the loop flushes the rest before it next waits.
  if (buffer_.size() >= kBlock) flush();
}

void Output::line(term::SharedBytes text) {
  if (text.size() < kBlock) {
    line(text.view());
    return;
  }
  // A large message is queued as it is, in its own chunk; its newline starts the next block.
  counted(text.view());
  flush();
  enqueue({{}, std::move(text)});
  buffer_.push_back('\n');
}

void Output::flush() {
  if (buffer_.empty()) return;
  const size_t done = write_now(buffer_);
  if (done == buffer_.size()) {
    buffer_.clear();
    return;
  }
  buffer_.erase(0, done);
  enqueue({std::exchange(buffer_, {}), {}});
}

size_t Output::write_now(const std::string& block) {
  if (!direct_) return 0;
  {
    const std::lock_guard lock(mu_);
    if (queued_bytes_ != 0) return 0;  // older lines are still with the writer
  }
  iovec v{const_cast<char*>(block.data()), block.size()};
  const ssize_t n = ::pwritev2(fileno(out_), &v, 1, -1, RWF_NOWAIT);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EINTR) return 0;
  if (errno == EOPNOTSUPP || errno == EINVAL) {
    direct_ = false;  // stdout cannot say "would block" (a regular file): always the writer
    return 0;
  }
  return block.size();  // the reader is gone (EPIPE) or stdout is broken: the lines are lost
}

void Output::enqueue(term::Chunk&& chunk) {
  if (!writer_.joinable()) writer_ = std::thread([this] { write_blocks(); });
  std::unique_lock lock(mu_);
  room_.wait(lock, [this] { return queued_bytes_ < kMaxQueued; });
  queued_bytes_ += chunk.bytes().size();
  queue_.push_back(std::move(chunk));
  if (buffer_.capacity() == 0) buffer_ = std::exchange(spare_, {});
  lock.unlock();
  work_.notify_one();
}

void Output::write_blocks() {
  std::vector<term::Chunk> blocks;
  std::unique_lock lock(mu_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;
    blocks.swap(queue_);
    lock.unlock();
    std::fflush(out_);
    write_all(fileno(out_), blocks);
    size_t written = 0;
    for (const auto& b : blocks) written += b.bytes().size();
    lock.lock();
    queued_bytes_ -= written;
    // Keep one ordinary block for the loop to fill next; a large message's goes now.
    for (auto& b : blocks) {
      if (spare_.capacity() == 0 && b.block.capacity() <= 4 * kBlock) {
        spare_ = std::move(b.block);
        spare_.clear();
      }
    }
    blocks.clear();  // a shared message's buffer (the frame it came in) goes here, off the loop
    room_.notify_one();
  }
}

}  // namespace chat::service
