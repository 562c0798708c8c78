// Chat lines go to stdout as bare lines, like the Elixir app's IO.puts. They are collected
// until flush() (the app calls it at most every few ms, see App::after_writes) and written as
// one block: at once if stdout takes it without
// blocking (RWF_NOWAIT; a FIFO or /dev/null, which refuse that flag, see
// other_nonblocking_path), else by a writer thread. stdout is usually a pipe whose reader may
// be slow or stopped, and the loop never waits on it:
//   - up to the soft limit, lines queue for the writer;
//   - past it, full() is true: whoever feeds the output holds back (the connections whose
//     frames printed stop reading, see net::InputGate, and hold(peer) pauses a named peer)
//     until the writer is back under half the limit, when the wake function runs;
//   - past the hard limit (four times the soft one) a line is dropped, counted and logged:
//     only output that no peer sent (nothing to pause) can get there.
// At exit, what the writer cannot hand to stdout within a short grace is reported in a log
// line (lines and bytes not printed) rather than waited for.
#pragma once

#include <sys/uio.h>  // RWF_NOWAIT

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chat/term/bytes.hpp"

namespace chat::service {

class Output {
 public:
  static constexpr size_t kDefaultSoftLimit = 16U << 20U;

  explicit Output(std::FILE* out = stdout, size_t soft_limit = kDefaultSoftLimit);
  // Writes what stdout takes before it goes; gives up on a stdout that stopped taking bytes
  // (no progress for a few hundred ms) and logs what was left unprinted.
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void line(std::string_view text);
  // The same for shared text (a large binary): a large one is written from where it lies.
  void line(term::SharedBytes text);
  // Hands the collected lines to the writer. Never waits.
  void flush();
  // Whether lines wait for flush().
  [[nodiscard]] bool pending() const { return !buffer_.empty(); }
  // Told of every line after it is queued (the web feed listens here).
  void on_line(std::function<void(std::string_view)> fn) { listener_ = std::move(fn); }
  [[nodiscard]] uint64_t lines() const { return lines_; }
  // Whether the loop still writes stdout itself when it has room (false: every line goes
  // through the writer thread, as for a regular file).
  [[nodiscard]] bool direct() const { return direct_fd_ >= 0; }

  // --- backpressure (the seam for whatever feeds Chat) ---
  // "May I print now?" is answered no (full() is true) while more than the soft limit waits
  // for stdout. Printing anyway is safe (nothing is lost below the hard limit); the caller
  // should pause its source, and is told when to resume by when_room().
  [[nodiscard]] bool full() const { return shared_->full.load(std::memory_order_relaxed); }
  // Runs `resume` on the loop thread once the output has room again (at once if it has).
  void when_room(std::function<void()> resume);
  // "Pause the peer that sent this": asks the composition root (set_holder) to stop reading
  // from `peer` until the output has room. Does nothing while the output is not full.
  void hold(const std::string& peer);
  void set_holder(std::function<void(const std::string& peer)> holder) { holder_ = std::move(holder); }
  // Called from the writer thread when room comes back after full(): it must only wake the
  // loop (uv_async_send), which then calls run_waiters(). Without one, flush() runs them.
  void set_wake(std::function<void()> wake);
  void run_waiters();

  [[nodiscard]] size_t soft_limit() const { return soft_limit_; }
  [[nodiscard]] size_t hard_limit() const { return 4 * soft_limit_; }
  [[nodiscard]] size_t queued_bytes() const;
  [[nodiscard]] uint64_t dropped_lines() const { return dropped_lines_; }
  [[nodiscard]] uint64_t times_full() const { return times_full_; }

 private:
  static constexpr size_t kBlock = 64U << 10U;
  // Bytes for the writer, and how many lines end in them (for the count of what was lost).
  struct Block {
    term::Chunk chunk;
    uint64_t lines = 0;
  };
  // What the writer thread shares with the loop. Held by the thread too, so that a writer
  // left blocked on a dead stdout at exit never points at freed memory.
  struct Shared {
    std::mutex mu;
    std::condition_variable work;      // the writer waits for blocks
    std::condition_variable progress;  // the exit waits for the writer
    std::vector<Block> queue;
    std::string spare;          // a written block, reused as the next buffer
    size_t queued_bytes = 0;    // queued or being written
    uint64_t queued_lines = 0;  // the same, in lines
    uint64_t written_bytes = 0;
    bool stopping = false;
    bool abandoned = false;  // the exit gave up: write nothing more
    std::function<void()> wake;
    // Set by the loop past the soft limit, cleared by the writer at half of it.
    std::atomic<bool> full{false};
  };
  void counted(std::string_view text);
  // Writes what stdout takes of `block` without blocking, if the writer has nothing pending;
  // returns the bytes written (or dropped because stdout is gone).
  size_t write_now(const std::string& block);
  // For a stdout that refuses RWF_NOWAIT: the null device as it is, or a non-blocking
  // description of the same FIFO. False: the writer thread only.
  bool other_nonblocking_path();
  void enqueue(Block&& block);
  static void write_blocks(const std::shared_ptr<Shared>& shared, std::FILE* out, size_t low_water);

  std::FILE* out_;
  size_t soft_limit_;
  // Where write_now() writes, and how: stdout with RWF_NOWAIT at first; then our own
  // non-blocking description of it, or -1 (the writer thread only).
  int direct_fd_;
  int direct_flags_ = RWF_NOWAIT;
  int own_fd_ = -1;
  std::string buffer_;  // the loop thread's, until flush()
  uint64_t buffer_lines_ = 0;
  uint64_t lines_ = 0;
  uint64_t dropped_lines_ = 0;
  uint64_t episode_dropped_lines_ = 0;  // since the output last had room
  uint64_t episode_dropped_bytes_ = 0;
  uint64_t times_full_ = 0;
  bool behind_ = false;  // the loop's view of full(): set at the soft limit, cleared by run_waiters()
  std::function<void(std::string_view)> listener_;
  std::function<void(const std::string&)> holder_;
  std::vector<std::function<void()>> waiters_;
  bool wake_set_ = false;

  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::thread writer_;  // started with the first block
};

}  // namespace chat::service
