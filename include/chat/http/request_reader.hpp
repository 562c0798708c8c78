// One HTTP/1.1 request read from the bytes a client sends, without I/O (libhttp-parser
// underneath): the server's connection feeds it what it reads, and the fuzz target feeds it
// anything. Everything it keeps is bounded by the limits it is given.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "chat/http/server.hpp"

namespace chat::http {

class RequestReader {
 public:
  enum class State { kMore, kDone, kFailed };

  // max_header_bytes bounds the request line and headers (each and all together),
  // max_body_bytes the body.
  RequestReader(size_t max_header_bytes, size_t max_body_bytes);
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  // Reads the next bytes of the request. kDone: the request is whole (bytes after it are
  // ignored: one request per connection); kFailed: status() is the 4xx to answer. Either
  // is final: later calls return it again and read nothing.
  State feed(std::string_view bytes);
  [[nodiscard]] State state() const;
  [[nodiscard]] int status() const;  // 400, 413 or 431 once kFailed
  // Headers as far as read (names in lower case, at most 100); method, path and query once kDone.
  [[nodiscard]] const Request& request() const;

 private:
  struct Parser;
  std::unique_ptr<Parser> p_;
};

}  // namespace chat::http
