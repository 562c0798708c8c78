#include "chat/net/epmd_client.hpp"

#include "chat/dist/constants.hpp"
#include "chat/net/runtime.hpp"

namespace chat::net {

void EpmdRequest::start(uv_loop_t* loop, const sockaddr_storage& addr, std::string request, Complete complete,
                        Done done, uint64_t timeout_ms) {
  auto* self = new EpmdRequest(std::move(request), std::move(complete), std::move(done));
  self->stream_ = Stream::create(loop, self);
  self->stream_->connect(reinterpret_cast<const sockaddr*>(&addr));
  self->timer_ = new uv_timer_t;
  self->timer_->data = self;
  uv_timer_init(loop, self->timer_);
  uv_timer_start(
      self->timer_,
      [](uv_timer_t* t) {
        TurnClock::io_began();
        auto* req = static_cast<EpmdRequest*>(t->data);
        if (req->stream_) req->stream_->close();
        req->finish(req->reply_.empty() ? "EPMD did not answer in time" : "");
      },
      timeout_ms, 0);
}

void EpmdRequest::on_connected(Stream& s) { s.write(request_); }

void EpmdRequest::on_data(Stream& s, std::string_view bytes) {
  // EPMD replies are small; anything larger is not EPMD.
  constexpr size_t kMaxReply = 1 << 20;
  reply_.append(bytes);
  if (reply_.size() > kMaxReply) {
    s.close();
    finish("oversized EPMD reply");
  } else if (complete_ && complete_(reply_)) {
    s.close();
    finish("");
  }
}

void EpmdRequest::on_closed(Stream& /*s*/, const std::string& why) {
  // EPMD answers and closes; a close after a reply is the normal end.
  finish(reply_.empty() ? "EPMD: " + why : "");
}

void EpmdRequest::finish(const std::string& error) {
  auto done = std::move(done_);
  const std::string reply = std::move(reply_);
  uv_timer_stop(timer_);
  close_and_delete(timer_, timer_);
  delete this;
  done(reply, error);
}

EpmdRegistration::EpmdRegistration(uv_loop_t* loop, const sockaddr_storage& addr, const std::string& alive,
                                   uint16_t port, Registered registered, Failed failed)
    : request_(epmd::alive2_request(alive, port, dist::kHighestVersion, dist::kLowestVersion)),
      registered_(std::move(registered)),
      failed_(std::move(failed)) {
  stream_ = Stream::create(loop, this);
  stream_->connect(reinterpret_cast<const sockaddr*>(&addr));
}

EpmdRegistration::~EpmdRegistration() {
  if (stream_) stream_->close();
}

void EpmdRegistration::on_connected(Stream& s) { s.write(request_); }

void EpmdRegistration::on_data(Stream& /*s*/, std::string_view bytes) {
  if (done_) return;  // EPMD says nothing after the reply
  reply_.append(bytes);
  size_t used = 0;
  const auto r = epmd::parse_alive2_reply(reply_, &used);
  if (std::holds_alternative<epmd::NeedMore>(r)) return;
  if (const auto* ok = std::get_if<epmd::Registered>(&r)) {
    done_ = true;
    registered_(ok->creation);
    return;
  }
  if (const auto* no = std::get_if<epmd::Refused>(&r)) {
    fail("EPMD refused the registration (code " + std::to_string(no->code) + "): is the name already in use?");
    return;
  }
  fail("malformed EPMD reply");
}

void EpmdRegistration::on_closed(Stream& /*s*/, const std::string& why) {
  stream_ = nullptr;
  fail(done_ ? "EPMD connection lost: " + why : "cannot register with EPMD: " + why);
}

void EpmdRegistration::fail(const std::string& why) {
  if (stream_) {
    stream_->close();
    stream_ = nullptr;
  }
  if (failed_) {
    auto f = std::move(failed_);
    failed_ = nullptr;
    f(why);
  }
}

}  // namespace chat::net
