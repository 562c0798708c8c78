#include "chat/net/stream.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace chat::net {

namespace {
// Reads are consumed synchronously by on_data, so one buffer serves every stream of the loop.
std::array<char, 256 * 1024> g_read_buffer;
}  // namespace

void WriteBatch::remove(Stream* s) {
  std::erase(streams_, s);
  std::replace(flushing_.begin(), flushing_.end(), s, static_cast<Stream*>(nullptr));
}

void WriteBatch::flush() {
  flushing_.swap(streams_);
  for (Stream* s : flushing_) {
    if (s == nullptr) continue;
    s->batched_ = false;
    s->flush();
  }
  flushing_.clear();
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
  uv_tcp_nodelay(&tcp_, 1);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<Stream*>(h->data);
        const std::span<char> area = self->events_ ? self->events_->read_area() : std::span<char>{};
        *buf = area.empty() ? uv_buf_init(g_read_buffer.data(), g_read_buffer.size())
                            : uv_buf_init(area.data(), static_cast<unsigned>(area.size()));
      },
      [](uv_stream_t* h, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Stream*>(h->data);
        if (self->closing_) return;
        if (n > 0) {
          if (self->events_ == nullptr) return;
          if (buf->base == g_read_buffer.data()) {
            self->events_->on_data(*self, std::string_view(buf->base, static_cast<size_t>(n)));
          } else {
            self->events_->on_read_in_place(*self, static_cast<size_t>(n));
          }
        } else if (n == UV_EOF) {
          self->fail("closed by peer");
        } else if (n < 0) {
          self->fail(uv_strerror(static_cast<int>(n)));
        }
      });
}

void Stream::stop_reading() {
  if (!closing_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void Stream::connect(const struct sockaddr* addr) {
  connect_req_.data = this;
  const int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, [](uv_connect_t* req, int status) {
    auto* self = static_cast<Stream*>(req->data);
    if (self->closing_) return;
    if (status != 0) {
      self->fail(uv_strerror(status));
      return;
    }
    self->start_reading();
    if (self->events_) self->events_->on_connected(*self);
  });
  if (rc != 0) fail(uv_strerror(rc));
}

void Stream::push(term::Chunk chunk) {
  if (!pending_.empty()) closed_bytes_ += pending_.back().bytes().size();
  pending_.push_back(std::move(chunk));
}

std::string& Stream::new_block() {
  push({std::exchange(spare_, {}), {}});
  return pending_.back().block;
}

void Stream::Queue::add(const term::SharedBytes& bytes) { s_.push({{}, bytes}); }

void Stream::Queue::patch(size_t at, std::string_view bytes) {
  // What is patched was written lately, into one block: look for it from the end.
  size_t start = s_.pending_bytes();
  auto it = s_.pending_.end();
  while (it != s_.pending_.begin() && start > at) start -= (--it)->bytes().size();
  std::string& block = it->block;
  if (it->shared || at - start + bytes.size() > block.size()) return;  // not in one block: no such write
  bytes.copy(block.data() + (at - start), bytes.size());
}

size_t Stream::pending_bytes() const {
  return pending_.empty() ? 0 : closed_bytes_ + pending_.back().bytes().size();
}

void Stream::write(std::string_view bytes) {
  append([bytes](term::Sink& out) { out.text().append(bytes); });
}

void Stream::flush() {
  if (pending_bytes() == 0 || closing_) return;
  inflight_bytes_ = pending_bytes();
  inflight_.swap(pending_);
  closed_bytes_ = 0;
  bufs_.clear();
  for (const auto& c : inflight_) {
    const std::string_view b = c.bytes();
    if (!b.empty()) bufs_.push_back(uv_buf_init(const_cast<char*>(b.data()), static_cast<unsigned>(b.size())));
  }
  writing_ = true;
  write_req_.data = this;
  const int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), bufs_.data(),
                          static_cast<unsigned>(bufs_.size()), [](uv_write_t* req, int status) {
    auto* self = static_cast<Stream*>(req->data);
    self->writing_ = false;
    self->inflight_bytes_ = 0;
    // Keep one written block of a modest size for the next burst; large ones go at once.
    for (auto& c : self->inflight_) {
      if (c.block.capacity() <= (256U << 10U) && c.block.capacity() > self->spare_.capacity()) {
        self->spare_ = std::move(c.block);
        self->spare_.clear();
      }
    }
    self->inflight_.clear();
    if (self->closing_) return;
    if (status != 0) {
      self->fail(uv_strerror(status));
      return;
    }
    if (self->pending_bytes() != 0) {
      self->flush();
    } else if (self->close_when_flushed_) {
      if (self->events_ != nullptr) {
        self->fail("");  // reported from the close callback
      } else {
        self->close();
      }
    }
  });
  if (rc != 0) {
    writing_ = false;
    fail(uv_strerror(rc));
  }
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
  if (writing_ || pending_bytes() != 0) {
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
