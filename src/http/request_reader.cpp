#include "chat/http/request_reader.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace chat::http {

namespace {
constexpr size_t kMaxHeaders = 100;  // more are read and dropped
}

struct RequestReader::Parser {
  Parser(size_t max_header, size_t max_body) : max_header_bytes(max_header), max_body_bytes(max_body) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
    http_parser_settings_init(&settings);
    settings.on_url = [](http_parser* p, const char* at, size_t len) { return self(p)->append(self(p)->url, at, len); };
    settings.on_header_field = [](http_parser* p, const char* at, size_t len) {
      auto* s = self(p);
      if (!s->value.empty() || s->field.empty()) s->flush_header();
      return s->append(s->field, at, len);
    };
    settings.on_header_value = [](http_parser* p, const char* at, size_t len) {
      return self(p)->append(self(p)->value, at, len);
    };
    settings.on_headers_complete = [](http_parser* p) {
      self(p)->flush_header();
      return 0;
    };
    settings.on_body = [](http_parser* p, const char* at, size_t len) {
      auto* s = self(p);
      if (s->request.body.size() + len > s->max_body_bytes) {
        s->error_status = 413;
        return 1;
      }
      s->request.body.append(at, len);
      return 0;
    };
    settings.on_message_complete = [](http_parser* p) {
      self(p)->complete = true;
      return 1;  // one request per connection: stop parsing here
    };
  }

  static Parser* self(http_parser* p) { return static_cast<Parser*>(p->data); }

  int append(std::string& to, const char* at, size_t len) {
    if (to.size() + len > max_header_bytes) {
      error_status = 431;
      return 1;
    }
    to.append(at, len);
    return 0;
  }

  void flush_header() {
    if (field.empty()) return;
    std::transform(field.begin(), field.end(), field.begin(), [](unsigned char c) { return std::tolower(c); });
    if (request.headers.size() < kMaxHeaders) request.headers[field] = value;
    field.clear();
    value.clear();
  }

  State fail(int status) {
    state = State::kFailed;
    error_status = status;
    return state;
  }

  // The method, path and query of a whole request.
  State finish() {
    request.method = http_method_str(static_cast<http_method>(parser.method));
    http_parser_url u{};
    http_parser_url_init(&u);
    if (http_parser_parse_url(url.data(), url.size(), 0, &u) != 0) return fail(400);
    if ((u.field_set & (1U << UF_PATH)) != 0) request.path = url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if ((u.field_set & (1U << UF_QUERY)) != 0) {
      request.query = url.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    }
    state = State::kDone;
    return state;
  }

  size_t max_header_bytes;
  size_t max_body_bytes;
  http_parser parser{};
  http_parser_settings settings{};
  Request request;
  std::string url, field, value;
  int error_status = 0;
  bool complete = false;
  State state = State::kMore;
};

RequestReader::RequestReader(size_t max_header_bytes, size_t max_body_bytes)
    : p_(std::make_unique<Parser>(max_header_bytes, max_body_bytes)) {}

RequestReader::~RequestReader() = default;

RequestReader::State RequestReader::feed(std::string_view bytes) {
  Parser& p = *p_;
  if (p.state != State::kMore) return p.state;
  const size_t used = http_parser_execute(&p.parser, &p.settings, bytes.data(), bytes.size());
  if (p.complete) return p.finish();
  if (p.error_status != 0) return p.fail(p.error_status);
  if (p.parser.http_errno == HPE_HEADER_OVERFLOW) return p.fail(431);
  if (p.parser.http_errno != HPE_OK || used != bytes.size()) return p.fail(400);
  if (p.parser.nread > p.max_header_bytes) return p.fail(431);
  return p.state;
}

RequestReader::State RequestReader::state() const { return p_->state; }
int RequestReader::status() const { return p_->state == State::kFailed ? p_->error_status : 0; }
const Request& RequestReader::request() const { return p_->request; }

}  // namespace chat::http
