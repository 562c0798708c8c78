#include "chat/net/stream.hpp"
#include "chat/net/turn_stats.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include <sys/socket.h>

namespace chat::net {

namespace {
// Reads are consumed synchronously by on_data, so one buffer serves every stream of the loop.
std::array<char, 256 * 1024> g_read_buffer;
// TLS: what a session decrypts when the user has no read_area() of its own. A record holds at
// most 16 KB of plaintext, and each read returns one record's.
std::array<char, 64 * 1024> g_plain_buffer;
// Blocks kept for reuse after a write: small ones only, so that an idle stream holds little.
constexpr size_t kKeepBlock = 256U << 10U;
// A write of many megabytes takes the loop as long to copy into the socket: the rest of a
// large queue goes out in the next turns (on_written), with other peers served in between.
constexpr size_t kWriteSlice = 1U << 20U;
// TLS: a flush of this much plaintext or more is staged (Stream::tls_flush). Its records are
// gathered in a buffer that stays in the cache and written to the socket each time it fills,
// where they would otherwise be copied into one buffer as large as the flush, freshly allocated
// for it, and written after: that copy and its page faults cost a 1 MB sender about 20%.
// Records written one by one as they are made would save the copy too, but 16 KB segments
// cost the receiver about 30% more CPU (measured).
constexpr size_t kStageFrom = 64U << 10U;
struct Stage {
  std::array<char, 256U << 10U> bytes;
  size_t used = 0;
  bool blocked = false;  // the socket took less than all: the rest waits for uv_write
};
Stage g_stage;
}  // namespace

void WriteBatch::remove(Stream* s) {
  std::erase(streams_, s);
  std::replace(flushing_.begin(), flushing_.end(), s, static_cast<Stream*>(nullptr));
}

void WriteBatch::flush() {
  // A write that completes at once reports on_written from inside flush(), and what its
  // handler queues must still leave in this iteration, before the loop sleeps.
  while (!streams_.empty()) {
    flushing_.swap(streams_);
    for (Stream* s : flushing_) {
      if (s == nullptr) continue;
      s->batched_ = false;
      s->flush();
    }
    flushing_.clear();
  }
}

void WriteBatch::stop() {
  flush();
  stopped_ = true;
}

void Stream::schedule() {
  if (batched_) return;
  auto* batch = static_cast<WriteBatch*>(tcp_.loop->data);
  if (batch == nullptr || batch->stopped()) {
    flush();
    return;
  }
  batched_ = true;
  batch->add(this);
}

Stream* Stream::create(uv_loop_t* loop, Events* events) {
  auto* s = new Stream(events);
  uv_tcp_init(loop, &s->tcp_);
  s->tcp_.data = s;
  return s;
}

void Stream::start_reading() {
  // Once: reading stops and starts again each time a connection yields its turn.
  if (!nodelay_) {
    nodelay_ = true;
    uv_tcp_nodelay(&tcp_, 1);
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        TurnClock::io_began();
        auto* self = static_cast<Stream*>(h->data);
        // Under TLS the socket carries ciphertext: a read_area() is for plaintext.
        const std::span<char> area =
            self->events_ && !self->tls_ ? self->events_->read_area() : std::span<char>{};
        *buf = area.empty() ? uv_buf_init(g_read_buffer.data(), g_read_buffer.size())
                            : uv_buf_init(area.data(), static_cast<unsigned>(area.size()));
      },
      [](uv_stream_t* h, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Stream*>(h->data);
        if (self->closing_) return;
        if (n > 0) {
          if (self->events_ == nullptr) return;
          if (self->tls_) {
            self->tls_received(std::string_view(buf->base, static_cast<size_t>(n)));
          } else if (buf->base == g_read_buffer.data()) {
            self->events_->on_data(*self, std::string_view(buf->base, static_cast<size_t>(n)));
          } else {
            self->events_->on_read_in_place(*self, static_cast<size_t>(n));
          }
        } else if (n == UV_EOF) {
          // A node without TLS distribution hangs up on a ClientHello without a word.
          self->fail(self->tls_ && !self->tls_->established()
                         ? "closed by peer during the TLS handshake (a node without TLS distribution does that)"
                         : "closed by peer");
        } else if (n < 0) {
          self->fail(uv_strerror(static_cast<int>(n)));
        }
      });
}

bool Stream::set_read_low_water(int bytes) {
  uv_os_fd_t fd = -1;
  if (closing_ || uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return false;
  return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0;
}

void Stream::stop_reading() {
  if (!closing_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void Stream::connect(const struct sockaddr* addr) {
  connect_req_.data = this;
  const int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, [](uv_connect_t* req, int status) {
    TurnClock::io_began();
    auto* self = static_cast<Stream*>(req->data);
    if (self->closing_) return;
    if (status != 0) {
      self->fail(uv_strerror(status));
      return;
    }
    self->start_reading();
    if (self->tls_) {
      // on_connected once the TLS handshake is done (tls_received).
      self->tls_->start();
      if (self->tls_->failed()) {
        self->tls_fail();
      } else {
        self->schedule();
      }
      return;
    }
    if (self->events_) self->events_->on_connected(*self);
  });
  if (rc != 0) fail(uv_strerror(rc));
}

void Stream::reuse(term::Chunk& written) {
  if (!written.shared && written.block.capacity() <= kKeepBlock) pending_.reuse(std::move(written.block));
}

void Stream::write(std::string_view bytes) {
  append([bytes](term::Sink& out) { out.text().append(bytes); });
}

void Stream::flush_early() {
  if (tls_ || close_when_flushed_) return;  // TLS stages its own flushes; a closing stream waits
  flush();
}

void Stream::flush() {
  if (closing_) return;
  if (tls_) {
    tls_flush();
    return;
  }
  // Written early (flush_early), the stream is still in the batch while a write is under way.
  if (writing_ || pending_.empty()) return;
  inflight_ = pending_.take_front(kWriteSlice);
  inflight_bytes_ = 0;
  bufs_.clear();
  for (const auto& c : inflight_) {
    const std::string_view b = c.bytes();
    inflight_bytes_ += b.size();
    if (!b.empty()) bufs_.push_back(uv_buf_init(const_cast<char*>(b.data()), static_cast<unsigned>(b.size())));
  }
  writing_ = true;
  write_req_.data = this;
  // The socket first: what it takes at once needs no write request, whose completion would
  // come a loop iteration later and cost an epoll_ctl to take the socket's write interest
  // back (libuv 1.44). Only what it leaves waits for uv_write.
  const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs_.data(), static_cast<unsigned>(bufs_.size()));
  if (n >= 0 && static_cast<size_t>(n) == inflight_bytes_) {
    on_written(&write_req_, 0);
    return;
  }
  size_t done = n > 0 ? static_cast<size_t>(n) : 0;
  size_t first = 0;
  while (first < bufs_.size() && done >= bufs_[first].len) done -= bufs_[first++].len;
  if (first < bufs_.size()) {
    bufs_[first].base += done;
    bufs_[first].len -= done;
  }
  const int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), bufs_.data() + first,
                          static_cast<unsigned>(bufs_.size() - first), &Stream::on_written);
  if (rc != 0) {
    writing_ = false;
    fail(uv_strerror(rc));
  }
}

void Stream::on_written(uv_write_t* req, int status) {
  TurnClock::io_began();
  auto* self = static_cast<Stream*>(req->data);
  self->writing_ = false;
  self->inflight_bytes_ = 0;
  // Keep one written block of a modest size for the next burst; large ones go at once.
  for (auto& c : self->inflight_) self->reuse(c);
  self->inflight_.clear();
  if (self->cipher_.capacity() > kKeepBlock) std::string().swap(self->cipher_);
  if (self->closing_) return;
  if (status != 0) {
    self->fail(uv_strerror(status));
    return;
  }
  if (self->has_unsent()) {
    self->flush();
  } else if (self->close_when_flushed_) {
    if (self->events_ != nullptr) {
      self->fail("");  // reported from the close callback
    } else {
      self->close();
    }
    return;
  }
  if (!self->closing_ && self->events_ != nullptr) self->events_->on_written(*self);
}

void Stream::tls_received(std::string_view ciphertext) {
  bool was_established = tls_->established();
  tls_->feed(ciphertext);
  while (!closing_) {
    // Plaintext goes where the user wants it (the rest of a large frame), else to the shared
    // buffer, from which on_data takes it.
    std::span<char> area = events_ != nullptr && was_established ? events_->read_area() : std::span<char>{};
    const bool in_place = !area.empty();
    if (!in_place) area = g_plain_buffer;
    const auto r = tls_->read(area);
    if (!was_established && tls_->established()) {
      was_established = true;
      // A client's user starts its own handshake now; a server's waits for the peer's.
      if (events_ != nullptr && tls_->client()) events_->on_connected(*this);
      if (closing_) break;
    }
    if (r.status == tls::Session::Status::kData) {
      if (events_ == nullptr) continue;
      if (in_place) {
        events_->on_read_in_place(*this, r.n);
      } else {
        events_->on_data(*this, std::string_view(area.data(), r.n));
      }
      continue;
    }
    if (r.status == tls::Session::Status::kClosed) {
      fail("closed by peer (TLS close_notify)");
    } else if (r.status == tls::Session::Status::kFailed) {
      tls_fail();
    }
    break;
  }
  if (closing_) return;
  tls_->end_feed();
  // Handshake messages to answer with, or what was queued while the handshake ran.
  if (!writing_ && has_unsent()) schedule();
}

// Queued plaintext into the session (records in its output); false if the session failed.
bool Stream::tls_encrypt_pending() {
  if (!tls_->established() || pending_.empty()) return true;
  for (auto& c : pending_.take()) {
    if (!tls_->write(c.bytes())) {
      tls_fail();
      return false;
    }
    reuse(c);
  }
  return true;
}

void Stream::tls_flush() {
  const bool staged = !writing_ && !tls_->has_output() && pending_.size() >= kStageFrom;
  if (staged) tls_->set_sink({&Stream::tls_stage, this});
  const bool ok = tls_encrypt_pending();
  bool left = false;
  if (staged) {
    tls_->set_sink({});
    left = tls_unstage();
  }
  if (!ok || closing_) return;
  if (left) {
    if (tls_->has_output()) {
      std::string later;
      tls_->take_output(later);
      cipher_.append(later);
    }
  } else if (tls_->has_output()) {
    tls_->take_output(cipher_);
  } else {
    // All went out at once: what a finished write would have reported.
    if (staged && events_ != nullptr) events_->on_written(*this);
    return;
  }
  inflight_bytes_ = cipher_.size();
  bufs_.assign(1, uv_buf_init(cipher_.data(), static_cast<unsigned>(cipher_.size())));
  writing_ = true;
  write_req_.data = this;
  // The socket first, as in flush(): records it takes at once need no write request.
  const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs_.data(), 1);
  if (n >= 0 && static_cast<size_t>(n) == cipher_.size()) {
    on_written(&write_req_, 0);
    return;
  }
  if (n > 0) {
    bufs_[0].base += n;
    bufs_[0].len -= static_cast<unsigned>(n);
  }
  const int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), bufs_.data(), 1, &Stream::on_written);
  if (rc != 0) {
    writing_ = false;
    fail(uv_strerror(rc));
  }
}

// The sink of a staged flush: records into the staging buffer, which goes to the socket each
// time it fills. Once the socket has not taken it all, nothing more is taken: later records
// stay in the session's output, behind the rest of the stage.
size_t Stream::tls_stage(void* ctx, std::string_view records) {
  auto* self = static_cast<Stream*>(ctx);
  if (self->closing_ || g_stage.blocked) return 0;
  size_t taken = 0;
  while (!records.empty()) {
    const size_t k = std::min(records.size(), g_stage.bytes.size() - g_stage.used);
    std::memcpy(g_stage.bytes.data() + g_stage.used, records.data(), k);
    g_stage.used += k;
    taken += k;
    records.remove_prefix(k);
    if (g_stage.used == g_stage.bytes.size() && !self->tls_stage_send()) break;
  }
  return taken;
}

// Writes the staging buffer; false (and blocked) if the socket did not take all of it.
bool Stream::tls_stage_send() {
  uv_buf_t b = uv_buf_init(g_stage.bytes.data(), static_cast<unsigned>(g_stage.used));
  // A short write or EAGAIN leaves the rest for uv_write; an error shows there too.
  const int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  const size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
  std::memmove(g_stage.bytes.data(), g_stage.bytes.data() + sent, g_stage.used - sent);
  g_stage.used -= sent;
  if (g_stage.used == 0) return true;
  g_stage.blocked = true;
  return false;
}

// Ends a staged flush: sends what the stage still holds. True if some of it is left, now in
// cipher_ (to go before anything in the session's output). The stage is empty again.
bool Stream::tls_unstage() {
  if (g_stage.used > 0 && !g_stage.blocked && !closing_) tls_stage_send();
  const bool left = g_stage.used > 0 && !closing_;
  if (left) cipher_.assign(g_stage.bytes.data(), g_stage.used);
  g_stage.used = 0;
  g_stage.blocked = false;
  return left;
}

// The session's alert (why it gave up) goes out if the socket takes it at once; the stream
// closes either way.
void Stream::tls_fail() {
  if (closing_) return;
  if (tls_->has_output() && !writing_) {
    std::string alert;
    tls_->take_output(alert);
    uv_buf_t b = uv_buf_init(alert.data(), static_cast<unsigned>(alert.size()));
    (void)uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  }
  fail("TLS: " + tls_->error());
}

// on_closed is reported from the close callback, never from inside a call the user made, so
// a user may write() or connect() without being re-entered.
void Stream::fail(const std::string& why) {
  if (closing_) return;
  closing_ = true;
  error_ = why;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Stream::on_close);
}

void Stream::on_close(uv_handle_t* h) {
  TurnClock::io_began();
  auto* self = static_cast<Stream*>(h->data);
  if (self->batched_) {
    if (auto* batch = static_cast<WriteBatch*>(h->loop->data)) batch->remove(self);
  }
  if (self->events_) self->events_->on_closed(*self, self->error_);
  delete self;
}

void Stream::close() {
  events_ = nullptr;
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Stream::on_close);
}

void Stream::close_after_flush(bool report) {
  if (!report) events_ = nullptr;
  if (tls_ && !closing_) {
    // Plaintext queued before the TLS handshake ended can never go out; else it goes first,
    // then close_notify, as an ssl socket closes.
    if (!tls_->established()) {
      if (report) {
        fail("");
      } else {
        close();
      }
      return;
    }
    // Encrypted before the shutdown: a session that has sent close_notify writes nothing more,
    // and a refusal status ("snok" to a simultaneous connection) has to reach the peer.
    if (!tls_encrypt_pending()) return;
    tls_->shutdown();
    if (!writing_) flush();
  }
  if (writing_ || !pending_.empty()) {
    close_when_flushed_ = true;
    return;
  }
  if (report) {
    fail("");
  } else {
    close();
  }
}

std::string Stream::peer_address() {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char ip[64] = {0};
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(in, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(in->sin_port));
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  uv_ip6_name(in6, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(in6->sin6_port));
}

}  // namespace chat::net
