#include "chat/net/stream.hpp"

#include <array>

namespace chat::net {

namespace {
// Reads are consumed synchronously by on_data, so one buffer serves every stream of the loop.
std::array<char, 256 * 1024> g_read_buffer;
}  // namespace

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
      [](uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(g_read_buffer.data(), g_read_buffer.size()); },
      [](uv_stream_t* h, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Stream*>(h->data);
        if (self->closing_) return;
        if (n > 0) {
          if (self->events_) self->events_->on_data(*self, std::string_view(buf->base, static_cast<size_t>(n)));
        } else if (n == UV_EOF) {
          self->fail("closed by peer");
        } else if (n < 0) {
          self->fail(uv_strerror(static_cast<int>(n)));
        }
      });
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

void Stream::write(std::string_view bytes) {
  if (closing_) return;
  pending_.append(bytes);
  if (!writing_) flush();
}

void Stream::flush() {
  if (pending_.empty() || closing_) return;
  inflight_.swap(pending_);
  pending_.clear();
  writing_ = true;
  write_req_.data = this;
  uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
  const int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, [](uv_write_t* req, int status) {
    auto* self = static_cast<Stream*>(req->data);
    self->writing_ = false;
    self->inflight_.clear();
    // A large message should not pin its buffer for the life of the connection.
    if (self->inflight_.capacity() > (1U << 20U)) std::string().swap(self->inflight_);
    if (self->closing_) return;
    if (status != 0) {
      self->fail(uv_strerror(status));
      return;
    }
    if (!self->pending_.empty()) {
      self->flush();
    } else if (self->close_when_flushed_) {
      self->close();
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
  if (self->events_) self->events_->on_closed(*self, self->error_);
  delete self;
}

void Stream::close() {
  events_ = nullptr;
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Stream::on_close);
}

void Stream::close_after_flush() {
  if (writing_ || !pending_.empty()) {
    close_when_flushed_ = true;
    events_ = nullptr;
    return;
  }
  close();
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
