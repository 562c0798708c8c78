// A small HTTP/1.1 server on the loop, for the web dyno: request parsing by libhttp-parser
// (Node.js's parser, as Debian ships it), one request per connection, bounded sizes. A bad
// request gets a 4xx and its connection closes; nothing reaches the node.
// The web dyno is public, so everything a client holds is bounded (Limits): connections in
// all and per client address, the time to send a request and to take an answer, event
// streams and what waits for each. Past a limit the client is refused or dropped, never the
// node slowed; a connection is counted until its socket is really closed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chat::http {

struct Request {
  std::string method;
  std::string path;   // without the query string
  std::string query;
  std::string body;
  std::unordered_map<std::string, std::string> headers;  // names in lower case
};

struct Response {
  using Headers = std::vector<std::pair<std::string, std::string>>;
  Response(int s = 200, std::string type = "text/plain; charset=utf-8", std::string b = {}, Headers h = {})
      : status(s), content_type(std::move(type)), body(std::move(b)), headers(std::move(h)) {}
  int status;
  std::string content_type;
  std::string body;
  Headers headers;  // extra ones
};

// A response that stays open and receives chunks (Server-Sent Events).
class EventStream {
 public:
  virtual ~EventStream() = default;
  virtual void send(const std::string& chunk) = 0;
  [[nodiscard]] virtual bool open() const = 0;
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual void respond(Response r) = 0;
  // Answers 200 text/event-stream and keeps the connection; the stream closes with it. Null
  // past the limits on streams (the client has been answered 503).
  virtual std::shared_ptr<EventStream> stream() = 0;
  // For an answer that comes later (e.g. after a call to another node): the function may be
  // called once, at any time; it does nothing if the client has gone. Empty when the client
  // already waits on too many answers and streams (it has been answered 503).
  virtual std::function<void(Response)> defer() = 0;
};

struct Limits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 64 * 1024;
  // The whole request (headers and body) must arrive within this, else 408.
  uint64_t request_timeout_ms = 10'000;
  // A handler that has not answered by then gets its client a 504.
  uint64_t answer_timeout_ms = 30'000;
  // An answer the client has not taken by then is dropped with its connection.
  uint64_t write_timeout_ms = 10'000;
  // Open connections in all; at the limit the oldest one still sending its request makes room,
  // and if none is, the new one is closed at once.
  size_t max_connections = 1000;
  // Event streams and answers waited for (the connections that last) from one client address;
  // past it, such a request is answered 503. Short requests (/health) are not counted.
  size_t max_per_client = 32;
  // Behind a proxy that appends the client's address to X-Forwarded-For (Heroku's router), the
  // last entry of that header is the client; otherwise every client would have the proxy's.
  bool trust_forwarded_for = false;
  // The kernel's send buffer of an HTTP socket (it doubles it): with the default, autotuning
  // would let megabytes wait there for a client that does not read, before max_stream_queue.
  int send_buffer_bytes = 64 * 1024;
  // Event streams; at the limit a new one is answered 503 (the other routes stay open).
  size_t max_streams = 500;
  // Bytes waiting for an event stream's client before it is dropped (a client that does not read).
  size_t max_stream_queue = 64 * 1024;
  // A comment line on every event stream this often: proxies keep it open, dead clients show.
  uint64_t keepalive_ms = 15'000;
};

struct ServerStats {
  uint64_t requests = 0;
  uint64_t refused = 0;  // at the connection limits
  uint64_t evicted = 0;  // still sending a request when room was needed
  uint64_t slow_dropped = 0;  // event streams whose client did not read, answers not taken
  size_t open = 0;
  size_t streams = 0;
};

class Server {
 public:
  using Handler = std::function<void(const Request&, Exchange&)>;

  Server(uv_loop_t* loop, Handler handler, Limits limits = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Binds 0.0.0.0:port and listens; throws std::runtime_error if it cannot.
  void listen(uint16_t port);
  void close();
  [[nodiscard]] uint64_t requests() const { return stats_.requests; }
  [[nodiscard]] ServerStats stats() const;
  [[nodiscard]] const Limits& limits() const { return limits_; }

  class Connection;

 private:
  friend class Connection;
  static void on_connection(uv_stream_t* server, int status);
  void done(Connection* c);
  bool make_room();
  void keepalive();
  void refused(const char* why, const std::string& client);

  uv_loop_t* loop_;
  Handler handler_;
  Limits limits_;
  uv_tcp_t* listener_ = nullptr;
  uv_timer_t* keepalive_ = nullptr;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, size_t> per_client_;  // lasting connections by address
  bool hold_for(const std::string& client);
  std::vector<std::unique_ptr<Connection>> finished_;
  uv_idle_t* reaper_ = nullptr;
  ServerStats stats_;
  uint64_t accepted_ = 0;
  uint64_t last_refusal_log_ms_ = 0;
};

std::string status_text(int status);
// JSON string literal with escapes (for hand-built JSON documents).
std::string json_string(const std::string& s);

}  // namespace chat::http
