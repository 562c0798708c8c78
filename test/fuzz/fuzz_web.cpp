// Target "web": what a client of the public web dyno sends besides the request line and
// headers' syntax (app/web_input.hpp): the JSON body of POST /messages and the Authorization
// header.
//
// Input: any bytes, used three ways. Invariants besides "no crash":
//  - a body parse_flat_json takes, written back with http::json_string, parses to the same
//    fields; and any two byte strings, written as {key: value}, parse back to themselves
//    (the input split at its middle);
//  - the input as Basic credentials' password (base64 of "user:" + input) comes back whole,
//    and no Authorization header lets a request in under two different tokens.
//
// Seeds (test/fuzz/corpus/web): bodies the web page and the README's curl examples send,
// and Authorization headers.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "chat/app/web_input.hpp"
#include "common.hpp"

namespace {

constexpr const char* kToken = "s3cret-t0ken";

std::string write_json(const std::map<std::string, std::string>& fields) {
  std::string out = "{";
  for (const auto& [k, v] : fields) {
    if (out.size() > 1) out += ",";
    out += chat::http::json_string(k) + ":" + chat::http::json_string(v);
  }
  return out + "}";
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  if (const auto fields = chat::app::parse_flat_json(input)) {
    FUZZ_CHECK(chat::app::parse_flat_json(write_json(*fields)) == fields);
  }
  const std::map<std::string, std::string> pair{{input.substr(0, size / 2), input.substr(size / 2)}};
  FUZZ_CHECK(chat::app::parse_flat_json(write_json(pair)) == pair);

  // The decoder takes at most 1024 characters of base64, 768 bytes.
  if (size <= 763) FUZZ_CHECK(chat::app::basic_password(base64("user:" + input)) == input);
  (void)chat::app::basic_password(input);

  chat::http::Request req;
  req.headers["authorization"] = input;
  // One header carries one credential: no header lets in two different tokens.
  const bool in = chat::app::authorized(req, kToken);
  FUZZ_CHECK(!(in && chat::app::authorized(req, "an0ther-t0ken")));
  FUZZ_CHECK(!in || input.find(' ') != std::string::npos);
  return 0;
}
