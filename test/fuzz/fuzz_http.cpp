// Target "http": what a client sends the public web dyno, read by http::RequestReader (the
// request line, headers and body, through libhttp-parser, within the server's limits).
//
// Input: a control byte (how the rest is cut into reads, as common.hpp's Chunker cuts it),
// then the bytes. Invariants besides "no crash":
//  - a failed request says 400, 413 or 431, and the reader stays failed; a whole one keeps
//    at most 100 headers with lower-case names and a body within the limit;
//  - the reads' cut does not matter: the bytes in one read end the same way (a 431 aside:
//    the bound on the whole head is checked after each read, as the server does).
//
// Seeds (test/fuzz/corpus/http): the requests the web page, curl and the platform's health
// check send, chunked and oversized ones.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>

#include "chat/http/request_reader.hpp"
#include "common.hpp"

namespace {

// Small limits keep the fuzzer near them; the checks are the server's code.
constexpr size_t kMaxHeader = 512;
constexpr size_t kMaxBody = 1024;

using chat::http::RequestReader;
using State = RequestReader::State;

void check_final(const RequestReader& r) {
  if (r.state() == State::kFailed) {
    FUZZ_CHECK(r.status() == 400 || r.status() == 413 || r.status() == 431);
  }
  if (r.state() != State::kDone) return;
  const auto& req = r.request();
  FUZZ_CHECK(req.headers.size() <= 100);
  FUZZ_CHECK(req.body.size() <= kMaxBody);
  FUZZ_CHECK(req.path.size() + req.query.size() <= kMaxHeader);
  for (const auto& [name, value] : req.headers) {
    FUZZ_CHECK(name.size() <= kMaxHeader && value.size() <= kMaxHeader);
    for (unsigned char c : name) FUZZ_CHECK(!std::isupper(c));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  fuzz::Chunker chunker(data[0]);
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  RequestReader cut(kMaxHeader, kMaxBody);
  for (size_t at = 0; at < bytes.size();) {
    const size_t n = chunker.next(bytes.size() - at);
    const State s = cut.feed(bytes.substr(at, n));
    at += n;
    if (s != State::kMore) {
      FUZZ_CHECK(cut.feed(bytes.substr(at)) == s);  // final: nothing more is read
      break;
    }
  }
  check_final(cut);

  RequestReader whole(kMaxHeader, kMaxBody);
  whole.feed(bytes);
  check_final(whole);
  if (cut.status() != 431 && whole.status() != 431) {
    FUZZ_CHECK(cut.state() == whole.state());
    FUZZ_CHECK(cut.status() == whole.status());
    if (cut.state() == State::kDone) {
      const auto& a = cut.request();
      const auto& b = whole.request();
      FUZZ_CHECK(a.method == b.method && a.path == b.path && a.query == b.query);
      FUZZ_CHECK(a.body == b.body && a.headers == b.headers);
    }
  }
  return 0;
}
