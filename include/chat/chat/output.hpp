// Chat lines go to stdout as bare lines, like the Elixir app's IO.puts. They are collected
// during a loop iteration and written as one block: at once if stdout takes it without
// blocking (RWF_NOWAIT), else by a writer thread. stdout is usually a pipe whose reader may
// be slow, and the loop must not wait on it; handing every block to the thread would cost a
// wake-up of another core per iteration.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chat/term/bytes.hpp"

namespace chat::service {

class Output {
 public:
  explicit Output(std::FILE* out = stdout) : out_(out) {}
  // Everything handed over is written before the writer stops.
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  void line(std::string_view text);
  // The same for shared text (a large binary): a large one is written from where it lies.
  void line(term::SharedBytes text);
  // Hands the collected lines to the writer. Waits only while more than kMaxQueued bytes are
  // still unwritten: a reader of stdout that falls that far behind slows the node down
  // rather than costing lines or unbounded memory.
  void flush();
  // Told of every line after it is queued (the web feed listens here).
  void on_line(std::function<void(std::string_view)> fn) { listener_ = std::move(fn); }
  [[nodiscard]] uint64_t lines() const { return lines_; }

 private:
  static constexpr size_t kBlock = 64U << 10U;
  static constexpr size_t kMaxQueued = 16U << 20U;
  void counted(std::string_view text);
  // Writes what stdout takes of `block` without blocking, if the writer has nothing pending;
  // returns the bytes written (or dropped because stdout is gone).
  size_t write_now(const std::string& block);
  void enqueue(term::Chunk&& chunk);
  void write_blocks();

  std::FILE* out_;
  bool direct_ = true;  // false once stdout turned out not to support RWF_NOWAIT
  std::string buffer_;  // the loop thread's, until flush()
  uint64_t lines_ = 0;
  std::function<void(std::string_view)> listener_;

  std::mutex mu_;
  std::condition_variable work_;  // the writer waits for blocks
  std::condition_variable room_;  // flush() waits for the queue to shrink
  std::vector<term::Chunk> queue_;
  std::string spare_;  // a written block, reused as the next buffer
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::thread writer_;  // started with the first block
};

}  // namespace chat::service
