// A TCP stream over libuv that owns its handle and frees itself in the close callback, so its
// user can drop it at any time (even inside one of its callbacks) by calling close().
// Writes are queued and go out with the loop's WriteBatch at the end of the iteration; more
// are coalesced while one is in flight.
//
// With TLS (use_tls), a tls::Session sits under the same interface: what is read is decrypted
// before on_data (or straight into read_area()), what is queued is encrypted when it is
// flushed, and a connecting stream reports on_connected once the TLS handshake is done. Its
// user sees plaintext only; a plain stream takes none of these branches.
#pragma once

#include <uv.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/term/bytes.hpp"
#include "chat/tls/engine.hpp"

namespace chat::net {

class Stream;

// The streams of one loop that have bytes queued and no write in flight. They are written
// together once per loop iteration, before the loop polls, so that everything one input
// produced (a reply, a monitor, an exit signal) leaves in one writev and one segment. The
// owner of the loop (Runtime) sets loop->data to its batch; without one, writes go at once.
class WriteBatch {
 public:
  void add(Stream* s) { streams_.push_back(s); }
  void remove(Stream* s);
  void flush();
  // From now on writes go out at once (the loop is shutting down: no more iterations).
  void stop();
  [[nodiscard]] bool stopped() const { return stopped_; }

 private:
  std::vector<Stream*> streams_;
  std::vector<Stream*> flushing_;
  bool stopped_ = false;
};

class Stream {
 public:
  class Events {
   public:
    virtual ~Events() = default;
    virtual void on_connected(Stream& s) = 0;
    virtual void on_data(Stream& s, std::string_view bytes) = 0;
    // Where the next read may land instead of the loop's shared buffer (the rest of a large
    // frame, read in place); empty for the shared buffer. on_read_in_place reports such a read.
    virtual std::span<char> read_area() { return {}; }
    virtual void on_read_in_place(Stream& /*s*/, size_t /*n*/) {}
    // A write finished: queued_bytes() went down.
    virtual void on_written(Stream& /*s*/) {}
    // The peer closed, an I/O error, or a TLS failure: `why` says which. Not called after
    // close(), and always from a libuv callback, never from inside write() or connect().
    virtual void on_closed(Stream& s, const std::string& why) = 0;
  };

  static Stream* create(uv_loop_t* loop, Events* events);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  uv_tcp_t* handle() { return &tcp_; }
  void set_events(Events* e) { events_ = e; }
  // Runs the stream over TLS; call before start_reading() or connect().
  void use_tls(std::unique_ptr<tls::Session> session) { tls_ = std::move(session); }
  [[nodiscard]] const tls::Session* tls() const { return tls_.get(); }
  // Starts reading an accepted stream; again after stop_reading().
  void start_reading();
  // The kernel reports the socket readable only once this many bytes wait in it
  // (SO_RCVLOWAT); 1 is the default. False where it could not be set.
  bool set_read_low_water(int bytes);
  // Reads nothing more until start_reading(): the peer's bytes wait in the kernel, then in
  // the peer (TCP backpressure).
  void stop_reading();
  void connect(const struct sockaddr* addr);
  void write(std::string_view bytes);
  // Lets `fill` encode into the queue in place (a term::Sink that keeps shared binaries by
  // reference), then writes as write() does.
  template <typename Fill>
  void append(Fill&& fill) {
    if (closing_) return;
    fill(static_cast<term::Sink&>(pending_));
    if (!writing_) schedule();
    if (!writing_ && pending_.size() >= kWriteEarly) flush_early();
  }
  [[nodiscard]] size_t queued_bytes() const { return pending_.size() + inflight_bytes_; }
  // Stops all callbacks and frees the stream once libuv lets go of it.
  void close();
  // Closes after what is queued has been written (e.g. a refusal the peer should read). With
  // `report`, the events still hear on_closed (with an empty `why` once all was written), so
  // that the user can count the stream until it is really gone; otherwise they hear nothing.
  void close_after_flush(bool report = false);
  std::string peer_address();

 private:
  explicit Stream(Events* events) : events_(events) {}
  ~Stream() = default;
  friend class WriteBatch;
  // Writes now, or at the end of this loop iteration with the rest of the batch.
  void schedule();
  // A burst queued within one callback starts on the wire once it reaches kWriteEarly bytes,
  // not when the callback ends: the peer works while the rest is encoded, and blocks the
  // socket took are filled again instead of fresh memory.
  static constexpr size_t kWriteEarly = 1U << 20U;
  void flush_early();
  void flush();
  // Gives a written block back to pending_ to fill again, if it is small.
  void reuse(term::Chunk& written);
  void fail(const std::string& why);
  static void on_close(uv_handle_t* h);
  static void on_written(uv_write_t* req, int status);
  // TLS: ciphertext arrived; encrypt what is pending and write it; fail with the session's error.
  void tls_received(std::string_view ciphertext);
  void tls_flush();
  void tls_fail();
  bool tls_encrypt_pending();
  static size_t tls_stage(void* ctx, std::string_view records);
  bool tls_stage_send();
  bool tls_unstage();
  [[nodiscard]] bool has_unsent() const { return !pending_.empty() || (tls_ && tls_->has_output()); }

  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  Events* events_;
  // The queue goes out in writes of at most kWriteSlice bytes.
  term::ChunkList pending_;
  std::vector<term::Chunk> inflight_;
  std::vector<uv_buf_t> bufs_;
  std::unique_ptr<tls::Session> tls_;
  std::string cipher_;  // TLS: the ciphertext in flight (its buffer is reused)
  size_t inflight_bytes_ = 0;
  std::string error_;
  bool writing_ = false;
  bool closing_ = false;
  bool close_when_flushed_ = false;
  bool batched_ = false;
  bool nodelay_ = false;  // TCP_NODELAY is set
};

}  // namespace chat::net
