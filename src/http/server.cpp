#include "chat/http/server.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <stdexcept>
#include <utility>

#include "chat/http/request_reader.hpp"
#include "chat/net/runtime.hpp"
#include "chat/net/stream.hpp"

namespace chat::http {

std::string status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c == '<') {
          out += "\\u003c";  // safe to embed in HTML too
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

class Server::Connection final : net::Stream::Events, public Exchange {
 public:
  // What the connection is doing, which says which timer runs and what a limit may do to it.
  enum class Phase { kRequest, kHandling, kStreaming, kAnswering, kDone };

  Connection(Server& server, net::Stream* stream, std::string client, uint64_t seq)
      : server_(server),
        stream_(stream),
        client_(std::move(client)),
        seq_(seq),
        reader_(server.limits_.max_header_bytes, server.limits_.max_body_bytes) {
    stream_->set_events(this);
    stream_->start_reading();
    timer_ = new uv_timer_t;
    timer_->data = this;
    uv_timer_init(server_.loop_, timer_);
    // A client that never finishes its request is answered 408 and dropped.
    arm(server_.limits_.request_timeout_ms);
  }

  ~Connection() override {
    if (token_) *token_ = nullptr;
    if (stream_) stream_->close();
    uv_timer_stop(timer_);
    net::close_and_delete(timer_, timer_);
  }

  void respond(Response r) override {
    if (stream_ == nullptr || (phase_ != Phase::kRequest && phase_ != Phase::kHandling)) return;
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
    head += "Content-Type: " + r.content_type + "\r\n";
    head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
    head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    stream_->write(head);
    if (reader_.request().method != "HEAD") stream_->write(r.body);
    // Counted until the socket is closed: a client that does not take its answer holds a
    // descriptor, for write_timeout_ms at most.
    phase_ = Phase::kAnswering;
    stream_->close_after_flush(true);
    arm(server_.limits_.write_timeout_ms);
  }

  std::shared_ptr<EventStream> stream() override;

  std::function<void(Response)> defer() override {
    if (!server_.hold_for(client_key())) {
      respond(Response{503, "application/json", "{\"ok\":false,\"error\":\"too many requests from this address\"}\n",
                       {{"Retry-After", "5"}}});
      return {};
    }
    held_ = true;
    std::weak_ptr<Connection*> token = shared_self();
    return [token](Response r) {
      if (auto t = token.lock(); t && *t) (*t)->respond(std::move(r));
    };
  }

  void on_connected(net::Stream&) override {}
  void on_data(net::Stream&, std::string_view bytes) override {
    if (phase_ != Phase::kRequest) return;  // one request per connection: the rest is ignored
    heard_ = true;
    switch (reader_.feed(bytes)) {
      case RequestReader::State::kDone: return dispatch();
      case RequestReader::State::kFailed: return fail(reader_.status());
      case RequestReader::State::kMore: break;
    }
  }
  void on_closed(net::Stream&, const std::string&) override {
    stream_ = nullptr;
    finish();
  }

  // An event for the stream; a client that lets them pile up is dropped.
  void push(const std::string& chunk) {
    if (phase_ != Phase::kStreaming || stream_ == nullptr) return;
    if (stream_->queued_bytes() + chunk.size() > server_.limits_.max_stream_queue) {
      spdlog::debug("http: event stream to {} dropped: its client is not reading ({} bytes waiting)", client_,
                    stream_->queued_bytes());
      ++server_.stats_.slow_dropped;
      drop();
      return;
    }
    stream_->write(chunk);
  }
  [[nodiscard]] bool streaming() const { return phase_ == Phase::kStreaming && stream_ != nullptr; }
  [[nodiscard]] Phase phase() const { return phase_; }
  [[nodiscard]] uint64_t seq() const { return seq_; }
  // Whether any of its request was read: one accepted in the same burst as the newest may not
  // have been read yet, and is no trickler.
  [[nodiscard]] bool heard() const { return heard_; }
  [[nodiscard]] const std::string& client() const { return client_; }
  // Whom the per-client limits count this connection for: its address, or the one the proxy
  // in front says it forwards for (the last X-Forwarded-For entry, the one the proxy added).
  [[nodiscard]] std::string client_key() const {
    if (!server_.limits_.trust_forwarded_for) return client_;
    const auto& headers = reader_.request().headers;
    const auto it = headers.find("x-forwarded-for");
    if (it == headers.end()) return client_;
    std::string_view last(it->second);
    if (const auto comma = last.rfind(','); comma != std::string_view::npos) last.remove_prefix(comma + 1);
    while (!last.empty() && last.front() == ' ') last.remove_prefix(1);
    while (!last.empty() && last.back() == ' ') last.remove_suffix(1);
    return last.empty() || last.size() > 64 ? client_ : std::string(last);
  }
  [[nodiscard]] bool counted_as_stream() const { return counted_as_stream_; }
  [[nodiscard]] bool held() const { return held_; }

  // Closes at once, without an answer.
  void drop() {
    if (stream_ != nullptr) stream_->close();
    stream_ = nullptr;
    finish();
  }

 private:
  void arm(uint64_t ms) {
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
          net::TurnClock::io_began();
          static_cast<Connection*>(t->data)->timed_out();
        },
        ms, 0);
  }

  void timed_out() {
    switch (phase_) {
      case Phase::kRequest: fail(408); break;
      case Phase::kHandling: respond(Response{504, "text/plain; charset=utf-8", status_text(504) + "\n", {}}); break;
      case Phase::kAnswering:
        spdlog::debug("http: {} did not take its answer in time; dropped", client_);
        ++server_.stats_.slow_dropped;
        drop();
        break;
      default: break;
    }
  }

  std::shared_ptr<Connection*>& shared_self() {
    if (!token_) token_ = std::make_shared<Connection*>(this);
    return token_;
  }

  void dispatch() {
    phase_ = Phase::kHandling;
    arm(server_.limits_.answer_timeout_ms);
    ++server_.stats_.requests;
    server_.handler_(reader_.request(), *this);
  }

  void fail(int status) {
    spdlog::debug("http: bad request from {} ({})", client_, status);
    respond(Response{status, "text/plain; charset=utf-8", status_text(status) + "\n", {}});
  }

  void finish() {
    if (phase_ == Phase::kDone) return;
    phase_ = Phase::kDone;
    uv_timer_stop(timer_);
    server_.done(this);
  }

  friend class Server;
  Server& server_;
  net::Stream* stream_;
  std::string client_;
  uint64_t seq_;
  Phase phase_ = Phase::kRequest;
  bool heard_ = false;
  uv_timer_t* timer_ = nullptr;
  std::shared_ptr<Connection*> token_;  // held weakly by event streams and deferred answers
  RequestReader reader_;
  bool counted_as_stream_ = false;
  bool held_ = false;  // counted in the server's per-client table
};

namespace {
// Holds a connection weakly: the stream outlives nothing, the connection may go first.
class Sse final : public EventStream {
 public:
  explicit Sse(std::shared_ptr<Server::Connection*> conn) : conn_(std::move(conn)) {}
  void send(const std::string& chunk) override;
  [[nodiscard]] bool open() const override;

 private:
  std::shared_ptr<Server::Connection*> conn_;
};

// "203.0.113.9:51234" -> "203.0.113.9"; "::1:51234" -> "::1".
std::string address_only(const std::string& peer) {
  const auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}
}  // namespace

std::shared_ptr<EventStream> Server::Connection::stream() {
  if (stream_ == nullptr || phase_ != Phase::kHandling) return nullptr;
  if (server_.stats_.streams >= server_.limits_.max_streams || !server_.hold_for(client_key())) {
    server_.refused("event stream limits", client_);
    respond(Response{503, "text/plain; charset=utf-8", "too many event streams\n", {{"Retry-After", "10"}}});
    return nullptr;
  }
  held_ = true;
  phase_ = Phase::kStreaming;
  counted_as_stream_ = true;
  ++server_.stats_.streams;
  uv_timer_stop(timer_);
  stream_->write(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n");
  return std::make_shared<Sse>(shared_self());
}

void Sse::send(const std::string& chunk) {
  if (*conn_ != nullptr) (*conn_)->push(chunk);
}
bool Sse::open() const { return *conn_ != nullptr && (*conn_)->streaming(); }

Server::Server(uv_loop_t* loop, Handler handler, Limits limits)
    : loop_(loop), handler_(std::move(handler)), limits_(limits) {}

Server::~Server() { close(); }

void Server::listen(uint16_t port) {
  listener_ = new uv_tcp_t;
  uv_tcp_init(loop_, listener_);
  listener_->data = this;
  sockaddr_in addr{};
  uv_ip4_addr("0.0.0.0", port, &addr);
  int rc = uv_tcp_bind(listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_), 511, &Server::on_connection);
  if (rc != 0) {
    net::close_and_delete(listener_, listener_);
    listener_ = nullptr;
    throw std::runtime_error("cannot listen for HTTP on port " + std::to_string(port) + ": " + uv_strerror(rc));
  }
  keepalive_ = new uv_timer_t;
  keepalive_->data = this;
  uv_timer_init(loop_, keepalive_);
  uv_timer_start(
      keepalive_,
      [](uv_timer_t* t) {
        net::TurnClock::io_began();
        static_cast<Server*>(t->data)->keepalive();
      },
      limits_.keepalive_ms, limits_.keepalive_ms);
  uv_unref(reinterpret_cast<uv_handle_t*>(keepalive_));
}

void Server::close() {
  if (listener_) {
    net::close_and_delete(listener_, listener_);
    listener_ = nullptr;
  }
  if (keepalive_) {
    uv_timer_stop(keepalive_);
    net::close_and_delete(keepalive_, keepalive_);
    keepalive_ = nullptr;
  }
  connections_.clear();
  per_client_.clear();
  finished_.clear();
  if (reaper_) {
    uv_idle_stop(reaper_);
    net::close_and_delete(reaper_, reaper_);
    reaper_ = nullptr;
  }
}

ServerStats Server::stats() const {
  ServerStats s = stats_;
  s.open = connections_.size();
  return s;
}

bool Server::hold_for(const std::string& client) {
  size_t& n = per_client_[client];
  if (n >= limits_.max_per_client) {
    if (n == 0) per_client_.erase(client);
    return false;
  }
  ++n;
  return true;
}

void Server::keepalive() {
  // A comment line: EventSource ignores it; a proxy sees traffic; a client that stopped
  // reading fills its queue and is dropped.
  std::vector<Connection*> streams;
  for (const auto& [c, owned] : connections_) {
    if (c->streaming()) streams.push_back(c);
  }
  for (auto* c : streams) c->push(":\n\n");
}

void Server::refused(const char* why, const std::string& client) {
  ++stats_.refused;
  // One line per ten seconds at most: a flood of refusals must not flood the log.
  const uint64_t now = uv_now(loop_);
  if (last_refusal_log_ms_ == 0 || now - last_refusal_log_ms_ >= 10'000) {
    last_refusal_log_ms_ = now;
    spdlog::warn("http: refusing connections ({}; latest from {}; {} refused so far)", why, client, stats_.refused);
  }
}

// At the connection limit: the oldest connection still sending its request goes (a client
// that trickles its headers holds a slot for nothing); answers, handlers and streams stay.
// One that has sent part of its request goes before one not read yet: in a burst of accepts,
// a client's whole request may still wait in the socket.
bool Server::make_room() {
  Connection* oldest = nullptr;
  for (const auto& [c, owned] : connections_) {
    if (c->phase() != Connection::Phase::kRequest) continue;
    if (oldest == nullptr || std::pair(!c->heard(), c->seq()) < std::pair(!oldest->heard(), oldest->seq())) oldest = c;
  }
  if (oldest == nullptr) return false;
  ++stats_.evicted;
  oldest->drop();
  return true;
}

void Server::on_connection(uv_stream_t* s, int status) {
  net::TurnClock::io_began();
  auto* self = static_cast<Server*>(s->data);
  if (status != 0) {
    // EMFILE and the like: libuv has already accepted and closed what it could not take.
    self->refused(uv_strerror(status), "?");
    return;
  }
  net::Stream* stream = net::Stream::create(self->loop_, nullptr);
  if (uv_accept(s, reinterpret_cast<uv_stream_t*>(stream->handle())) != 0) {
    stream->close();
    return;
  }
  std::string client = address_only(stream->peer_address());
  int sndbuf = self->limits_.send_buffer_bytes;
  uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(stream->handle()), &sndbuf);
  if (self->connections_.size() >= self->limits_.max_connections && !self->make_room()) {
    self->refused("at the connection limit", client);
    stream->close();
    return;
  }
  auto c = std::make_unique<Connection>(*self, stream, std::move(client), ++self->accepted_);
  self->connections_.emplace(c.get(), std::move(c));
}

void Server::done(Connection* c) {
  // Freed on the next loop turn: this runs inside the connection's own callbacks.
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  if (auto pc = per_client_.find(c->client_key()); c->held() && pc != per_client_.end() && --pc->second == 0) {
    per_client_.erase(pc);
  }
  if (c->counted_as_stream()) --stats_.streams;
  finished_.push_back(std::move(it->second));
  connections_.erase(it);
  if (reaper_ == nullptr) {
    reaper_ = new uv_idle_t;
    reaper_->data = this;
    uv_idle_init(loop_, reaper_);
  }
  uv_idle_start(reaper_, [](uv_idle_t* h) {
    net::TurnClock::io_began();
    auto* self = static_cast<Server*>(h->data);
    self->finished_.clear();
    uv_idle_stop(h);
  });
}

}  // namespace chat::http
