#include "chat/chat/output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>  // makedev
#include <sys/uio.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>  // IOV_MAX (GCC 12's <memory> included it on the way, GCC 16's does not)
#include <utility>

namespace chat::service {

namespace {

// One writev hands stdout at most this much (a few large messages and their newlines), so that
// the writer's progress is visible to the exit: a stalled stdout is told apart from a slow one
// by bytes written between checks.
constexpr size_t kSlice = 4U << 20U;
// At exit: a stdout that took nothing for this long is not being read.
constexpr auto kNoProgress = std::chrono::milliseconds(300);
// ... and however slowly it reads, the node does not wait longer than this.
constexpr auto kExitCap = std::chrono::seconds(5);

// Writes every block, in order, with as few writev calls as the reader and kSlice allow;
// `written` is told after each call and says whether to go on. A reader that is gone (EPIPE)
// or another error costs the lines, never the node.
template <typename Progress>
void write_all(int fd, const std::vector<term::Chunk>& chunks, Progress&& written) {
  std::vector<iovec> iov;
  for (const auto& c : chunks) {
    const std::string_view b = c.bytes();
    if (!b.empty()) iov.push_back({const_cast<char*>(b.data()), b.size()});
  }
  size_t first = 0;
  while (first < iov.size()) {
    // As many whole iovecs as fit in a slice (at least one part of one).
    size_t count = 0;
    size_t bytes = 0;
    while (first + count < iov.size() && count < IOV_MAX && (count == 0 || bytes + iov[first + count].iov_len <= kSlice)) {
      bytes += iov[first + count].iov_len;
      ++count;
    }
    iovec saved = iov[first + count - 1];
    const bool cut = bytes > kSlice && count == 1;
    if (cut) iov[first].iov_len = kSlice;
    const ssize_t n = ::writev(fd, &iov[first], static_cast<int>(count));
    if (cut) iov[first].iov_len = saved.iov_len;
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (!written(static_cast<size_t>(n))) return;
    auto left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (left > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
}

uint64_t newlines(std::string_view s) { return static_cast<uint64_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

Output::Output(std::FILE* out, size_t soft_limit)
    : out_(out), soft_limit_(std::max<size_t>(soft_limit, kBlock)), direct_fd_(fileno(out)) {}

Output::~Output() {
  flush();
  if (own_fd_ >= 0) {
    ::close(own_fd_);
    direct_fd_ = own_fd_ = -1;
  }
  if (!writer_.joinable()) return;  // flush() wrote everything at once
  auto& s = *shared_;
  std::unique_lock lock(s.mu);
  s.wake = nullptr;  // the loop it would wake is going away
  const auto start = std::chrono::steady_clock::now();
  auto last_progress = start;
  uint64_t last_written = s.written_bytes;
  while (s.queued_bytes > 0) {
    s.progress.wait_for(lock, std::chrono::milliseconds(50));
    const auto now = std::chrono::steady_clock::now();
    if (s.written_bytes != last_written) {
      last_written = s.written_bytes;
      last_progress = now;
    } else if (now - last_progress > kNoProgress || now - start > kExitCap) {
      break;
    }
  }
  s.stopping = true;
  const size_t bytes = s.queued_bytes;
  const uint64_t lines = s.queued_lines;
  s.abandoned = bytes > 0;
  lock.unlock();
  s.work.notify_one();
  if (bytes == 0) {
    writer_.join();
    return;
  }
  // The writer is blocked on a stdout nobody reads; it holds what it shares with us, and the
  // process ends without it.
  writer_.detach();
  spdlog::warn("stdout is not being read: {} line(s) ({} bytes) not printed{}", lines, bytes,
               dropped_lines_ > 0 ? fmt::format(", {} dropped earlier", dropped_lines_) : std::string{});
}

void Output::counted(std::string_view text) {
  ++lines_;
  if (listener_) listener_(text);
}

void Output::line(std::string_view text) {
  buffer_.append(text);
  buffer_.push_back('\n');
  ++buffer_lines_;
  counted(text);
  // Bound the buffer under a burst; the loop flushes the rest before it next waits.
  if (buffer_.size() >= kBlock) flush();
}

void Output::line(term::SharedBytes text) {
  if (text.size() < kBlock) {
    line(text.view());
    return;
  }
  // A large message is queued as it is, in its own chunk; its newline (which counts the line)
  // starts the next block.
  counted(text.view());
  flush();
  enqueue(Block{{{}, std::move(text)}, 0});
  buffer_.push_back('\n');
  ++buffer_lines_;
}

void Output::flush() {
  if (!buffer_.empty()) {
    const size_t done = write_now(buffer_);
    if (done == buffer_.size()) {
      buffer_.clear();
      buffer_lines_ = 0;
    } else {
      buffer_.erase(0, done);
      const uint64_t lines = done == 0 ? buffer_lines_ : newlines(buffer_);
      buffer_lines_ = 0;
      enqueue(Block{{std::exchange(buffer_, {}), {}}, lines});
    }
  }
  // Without a wake function nobody else notices that the writer made room.
  if (behind_ && !wake_set_ && !full()) run_waiters();
}

size_t Output::write_now(const std::string& block) {
  if (direct_fd_ < 0) return 0;
  {
    const std::lock_guard lock(shared_->mu);
    if (shared_->queued_bytes != 0) return 0;  // older lines are still with the writer
  }
  for (;;) {
    iovec v{const_cast<char*>(block.data()), block.size()};
    const ssize_t n = ::pwritev2(direct_fd_, &v, 1, -1, direct_flags_);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EINTR) return 0;
    if ((errno == EOPNOTSUPP || errno == EINVAL) && direct_flags_ != 0) {
      if (other_nonblocking_path()) continue;
      direct_fd_ = -1;  // stdout cannot say "would block" (a regular file): always the writer
      return 0;
    }
    return block.size();  // the reader is gone (EPIPE) or stdout is broken: the lines are lost
  }
}

bool Output::other_nonblocking_path() {
  const int fd = fileno(out_);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  // The null device (a node whose chat lines nobody wants) takes every write at once.
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
    direct_flags_ = 0;
    return true;
  }
  // A FIFO refuses RWF_NOWAIT: a named pipe, and a pipe opened again through /dev/fd, as a
  // shell's `> >(...)` does. A second description of it, made non-blocking, is ours alone:
  // whoever else shares stdout's description (a shell, stderr) keeps it as it was.
  if (!S_ISFIFO(st.st_mode)) return false;
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const int nb = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (nb < 0) return false;
  struct stat again {};
  if (::fstat(nb, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
    ::close(nb);
    return false;
  }
  own_fd_ = direct_fd_ = nb;
  direct_flags_ = 0;
  return true;
}

void Output::enqueue(Block&& block) {
  auto& s = *shared_;
  const size_t size = block.chunk.bytes().size();
  std::unique_lock lock(s.mu);
  if (s.queued_bytes + size > hard_limit()) {
    // Only output no peer sent can come this far (the peers that print were paused at the
    // soft limit): losing it is the bound, and it is said, once per episode.
    lock.unlock();
    if (episode_dropped_lines_ == 0) {
      spdlog::warn("stdout is not being read and {} bytes wait for it: dropping chat lines until it catches up",
                   hard_limit());
    }
    const uint64_t lines = std::max<uint64_t>(block.lines, 1);
    dropped_lines_ += lines;
    episode_dropped_lines_ += lines;
    episode_dropped_bytes_ += size;
    return;
  }
  s.queued_bytes += size;
  s.queued_lines += block.lines;
  s.queue.push_back(std::move(block));
  if (buffer_.capacity() == 0) buffer_ = std::exchange(s.spare, {});
  const bool now_full = s.queued_bytes > soft_limit_ && !s.full.load(std::memory_order_relaxed);
  if (now_full) s.full.store(true, std::memory_order_relaxed);
  const size_t queued = s.queued_bytes;
  lock.unlock();
  if (now_full && !behind_) {
    behind_ = true;
    ++times_full_;
    spdlog::warn("stdout is {} bytes behind: pausing the peers that print until it catches up", queued);
  }
  s.work.notify_one();
  if (!writer_.joinable()) {
    writer_ = std::thread([shared = shared_, out = out_, low = soft_limit_ / 2] { write_blocks(shared, out, low); });
  }
}

size_t Output::queued_bytes() const {
  const std::lock_guard lock(shared_->mu);
  return shared_->queued_bytes;
}

void Output::set_wake(std::function<void()> wake) {
  wake_set_ = static_cast<bool>(wake);
  const std::lock_guard lock(shared_->mu);
  shared_->wake = std::move(wake);
}

void Output::when_room(std::function<void()> resume) {
  if (!full()) {
    resume();
    return;
  }
  waiters_.push_back(std::move(resume));
}

void Output::hold(const std::string& peer) {
  if (full() && holder_) holder_(peer);
}

void Output::run_waiters() {
  if (full()) return;
  if (behind_) {
    behind_ = false;
    if (episode_dropped_lines_ > 0) {
      spdlog::warn("stdout caught up; {} chat line(s) ({} bytes) were dropped meanwhile", episode_dropped_lines_,
                   episode_dropped_bytes_);
    } else {
      spdlog::info("stdout caught up: resuming {} paused reader(s)", waiters_.size());
    }
    episode_dropped_lines_ = episode_dropped_bytes_ = 0;
  }
  // A waiter may print (and so fill the output again, and wait again): run the ones of now.
  auto now = std::exchange(waiters_, {});
  for (auto& w : now) w();
}

void Output::write_blocks(const std::shared_ptr<Shared>& shared, std::FILE* out, size_t low_water) {
  auto& s = *shared;
  std::vector<Block> blocks;
  std::vector<term::Chunk> chunks;
  std::unique_lock lock(s.mu);
  for (;;) {
    s.work.wait(lock, [&s] { return s.stopping || !s.queue.empty(); });
    if (s.queue.empty() || s.abandoned) return;
    blocks.swap(s.queue);
    lock.unlock();
    for (auto& b : blocks) chunks.push_back(std::move(b.chunk));
    std::fflush(out);
    // Each block leaves the queue's count as soon as stdout has taken all of it.
    size_t block = 0;
    size_t into_block = 0;
    write_all(fileno(out), chunks, [&](size_t n) {
      const std::lock_guard progress_lock(s.mu);
      s.written_bytes += n;
      into_block += n;
      while (block < chunks.size() && into_block >= chunks[block].bytes().size()) {
        into_block -= chunks[block].bytes().size();
        s.queued_bytes -= chunks[block].bytes().size();
        s.queued_lines -= blocks[block].lines;
        ++block;
      }
      s.progress.notify_all();
      return !s.abandoned;
    });
    lock.lock();
    // Blocks stdout refused (a reader gone, an error) are dropped all the same.
    for (; block < chunks.size(); ++block) {
      s.queued_bytes -= chunks[block].bytes().size();
      s.queued_lines -= blocks[block].lines;
    }
    // Keep one ordinary block for the loop to fill next; a large message's goes now.
    for (auto& c : chunks) {
      if (s.spare.capacity() == 0 && c.block.capacity() <= 4 * kBlock) {
        s.spare = std::move(c.block);
        s.spare.clear();
      }
    }
    lock.unlock();
    chunks.clear();  // a shared message's buffer (the frame it came in) goes here, off the loop
    blocks.clear();
    lock.lock();
    if (s.queued_bytes <= low_water && s.full.load(std::memory_order_relaxed)) {
      s.full.store(false, std::memory_order_relaxed);
      if (s.wake) s.wake();
    }
    s.progress.notify_all();
  }
}

}  // namespace chat::service
