#include "chat/http/server.hpp"

#include <http_parser.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

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
  Connection(Server& server, net::Stream* stream) : server_(server), stream_(stream) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    http_parser_settings_init(&settings_);
    settings_.on_url = [](http_parser* p, const char* at, size_t len) {
      return self(p)->append(self(p)->url_, at, len);
    };
    settings_.on_header_field = [](http_parser* p, const char* at, size_t len) {
      auto* c = self(p);
      if (!c->value_.empty() || c->field_.empty()) c->flush_header();
      return c->append(c->field_, at, len);
    };
    settings_.on_header_value = [](http_parser* p, const char* at, size_t len) {
      return self(p)->append(self(p)->value_, at, len);
    };
    settings_.on_headers_complete = [](http_parser* p) {
      self(p)->flush_header();
      return 0;
    };
    settings_.on_body = [](http_parser* p, const char* at, size_t len) {
      auto* c = self(p);
      if (c->request_.body.size() + len > c->server_.limits_.max_body_bytes) {
        c->error_status_ = 413;
        return 1;
      }
      c->request_.body.append(at, len);
      return 0;
    };
    settings_.on_message_complete = [](http_parser* p) {
      self(p)->complete_ = true;
      return 1;  // one request per connection: stop parsing here
    };
    stream_->set_events(this);
    stream_->start_reading();
    // A client that never finishes its request is answered 408 and dropped.
    timer_ = new uv_timer_t;
    timer_->data = this;
    uv_timer_init(server_.loop_, timer_);
    uv_timer_start(
        timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->fail(408); }, server_.limits_.request_timeout_ms,
        0);
  }

  ~Connection() override {
    if (sse_token_) *sse_token_ = nullptr;
    if (stream_) stream_->close();
    uv_timer_stop(timer_);
    net::close_and_delete(timer_, timer_);
  }

  void respond(Response r) override {
    if (responded_ || stream_ == nullptr) return;
    responded_ = true;
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
    head += "Content-Type: " + r.content_type + "\r\n";
    head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    stream_->write(head);
    if (request_.method != "HEAD") stream_->write(r.body);
    stream_->close_after_flush();
    stream_ = nullptr;
    finish();
  }

  std::shared_ptr<EventStream> stream() override;

  std::function<void(Response)> defer() override {
    deferred_ = true;
    if (!sse_token_) sse_token_ = std::make_shared<Connection*>(this);
    std::weak_ptr<Connection*> token = sse_token_;
    return [token](Response r) {
      if (auto t = token.lock(); t && *t) (*t)->respond(std::move(r));
    };
  }

  void on_connected(net::Stream&) override {}
  void on_data(net::Stream&, std::string_view bytes) override {
    if (responded_ || complete_) return;
    header_bytes_ += bytes.size();
    const size_t used = http_parser_execute(&parser_, &settings_, bytes.data(), bytes.size());
    if (complete_) {
      dispatch();
      return;
    }
    if (error_status_ != 0) return fail(error_status_);
    if (parser_.http_errno == HPE_HEADER_OVERFLOW) return fail(431);
    if (parser_.http_errno != HPE_OK || used != bytes.size()) return fail(400);
    if (parser_.nread > server_.limits_.max_header_bytes) return fail(431);
  }
  void on_closed(net::Stream&, const std::string&) override {
    stream_ = nullptr;
    if (sse_) sse_open_ = false;
    finish();
  }

  void push(const std::string& chunk) {
    if (stream_ && sse_open_) stream_->write(chunk);
  }
  bool sse_open() const { return sse_open_ && stream_ != nullptr; }

 private:
  static Connection* self(http_parser* p) { return static_cast<Connection*>(p->data); }

  int append(std::string& to, const char* at, size_t len) {
    if (to.size() + len > server_.limits_.max_header_bytes) {
      error_status_ = 431;
      return 1;
    }
    to.append(at, len);
    return 0;
  }

  void flush_header() {
    if (field_.empty()) return;
    std::transform(field_.begin(), field_.end(), field_.begin(), [](unsigned char c) { return std::tolower(c); });
    if (request_.headers.size() < 100) request_.headers[field_] = value_;
    field_.clear();
    value_.clear();
  }

  void dispatch() {
    uv_timer_stop(timer_);
    request_.method = http_method_str(static_cast<http_method>(parser_.method));
    http_parser_url u{};
    http_parser_url_init(&u);
    if (http_parser_parse_url(url_.data(), url_.size(), 0, &u) != 0) return fail(400);
    if ((u.field_set & (1 << UF_PATH)) != 0) request_.path = url_.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if ((u.field_set & (1 << UF_QUERY)) != 0) request_.query = url_.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    ++server_.requests_;
    server_.handler_(request_, *this);
  }

  void fail(int status) {
    if (responded_) return;
    spdlog::debug("http: bad request ({})", status);
    respond(Response{status, "text/plain; charset=utf-8", status_text(status) + "\n"});
  }

  void finish() {
    if (finished_) return;
    if (sse_open_ && stream_ != nullptr) return;  // an open event stream lives on
    if (deferred_ && !responded_ && stream_ != nullptr) return;  // its answer is on the way
    finished_ = true;
    server_.done(this);
  }

  friend class Sse;
  Server& server_;
  net::Stream* stream_;
  http_parser parser_{};
  http_parser_settings settings_{};
  uv_timer_t* timer_ = nullptr;
  std::shared_ptr<Connection*> sse_token_;
  Request request_;
  std::string url_, field_, value_;
  size_t header_bytes_ = 0;
  int error_status_ = 0;
  bool complete_ = false;
  bool responded_ = false;
  bool finished_ = false;
  bool sse_ = false;
  bool sse_open_ = false;
  bool deferred_ = false;
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
}  // namespace

std::shared_ptr<EventStream> Server::Connection::stream() {
  if (responded_ || stream_ == nullptr) return nullptr;
  responded_ = true;
  sse_ = true;
  sse_open_ = true;
  stream_->write(
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n");
  if (!sse_token_) sse_token_ = std::make_shared<Server::Connection*>(this);
  return std::make_shared<Sse>(sse_token_);
}

void Sse::send(const std::string& chunk) {
  if (*conn_ != nullptr) (*conn_)->push(chunk);
}
bool Sse::open() const { return *conn_ != nullptr && (*conn_)->sse_open(); }

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
}

void Server::close() {
  if (listener_) {
    net::close_and_delete(listener_, listener_);
    listener_ = nullptr;
  }
  connections_.clear();
  finished_.clear();
  if (reaper_) {
    uv_idle_stop(reaper_);
    net::close_and_delete(reaper_, reaper_);
    reaper_ = nullptr;
  }
}

void Server::on_connection(uv_stream_t* s, int status) {
  auto* self = static_cast<Server*>(s->data);
  if (status != 0) return;
  net::Stream* stream = net::Stream::create(self->loop_, nullptr);
  if (uv_accept(s, reinterpret_cast<uv_stream_t*>(stream->handle())) != 0) {
    stream->close();
    return;
  }
  auto c = std::make_unique<Connection>(*self, stream);
  self->connections_.emplace(c.get(), std::move(c));
}

void Server::done(Connection* c) {
  // Freed on the next loop turn: this runs inside the connection's own callbacks.
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  finished_.push_back(std::move(it->second));
  connections_.erase(it);
  if (reaper_ == nullptr) {
    reaper_ = new uv_idle_t;
    reaper_->data = this;
    uv_idle_init(loop_, reaper_);
  }
  uv_idle_start(reaper_, [](uv_idle_t* h) {
    auto* self = static_cast<Server*>(h->data);
    self->finished_.clear();
    uv_idle_stop(h);
  });
}

}  // namespace chat::http
