// A small HTTP/1.1 server on the loop, for the web dyno: request parsing by libhttp-parser
// (Node.js's parser, as Debian ships it), one request per connection, bounded sizes. A bad
// request gets a 4xx and its connection closes; nothing reaches the node.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
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
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
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
  // Answers 200 text/event-stream and keeps the connection; the stream closes with it.
  virtual std::shared_ptr<EventStream> stream() = 0;
  // For an answer that comes later (e.g. after a call to another node): the function may be
  // called once, at any time; it does nothing if the client has gone.
  virtual std::function<void(Response)> defer() = 0;
};

struct Limits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 64 * 1024;
  uint64_t request_timeout_ms = 10'000;
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
  [[nodiscard]] uint64_t requests() const { return requests_; }

  class Connection;

 private:
  friend class Connection;
  static void on_connection(uv_stream_t* server, int status);
  void done(Connection* c);

  uv_loop_t* loop_;
  Handler handler_;
  Limits limits_;
  uv_tcp_t* listener_ = nullptr;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> finished_;
  uv_idle_t* reaper_ = nullptr;
  uint64_t requests_ = 0;
};

std::string status_text(int status);
// JSON string literal with escapes (for hand-built JSON documents).
std::string json_string(const std::string& s);

}  // namespace chat::http
