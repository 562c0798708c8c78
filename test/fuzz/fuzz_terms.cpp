// Target "terms": the external term format decoder on hostile bytes, and the round trip.
//
// Input: the bytes of one term with its version byte (131), as term::decode takes them. For
// every input that decodes to t: encode(t) must decode again, to a term equal to t (compared
// by encoding too, so NaN floats do not count as differences), and encoding must be stable.
// decode_at is also run at every offset, as parse_message does inside a frame.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "chat/term/term.hpp"
#include "chat/term/validate.hpp"
#include "common.hpp"

using chat::term::Term;

namespace {

bool has_nan(const Term& t) {
  using namespace chat::term;
  if (const auto* d = t.get<double>()) return std::isnan(*d);
  if (const auto* tu = t.get<Tuple>()) {
    for (const auto& i : tu->items) if (has_nan(i)) return true;
  }
  if (const auto* l = t.get<List>()) {
    for (const auto& i : l->items) if (has_nan(i)) return true;
    for (const auto& i : l->tail) if (has_nan(i)) return true;
  }
  if (const auto* m = t.get<Map>()) {
    for (const auto& [k, v] : m->entries) if (has_nan(k) || has_nan(v)) return true;
  }
  return false;
}

fuzz::GuardedBuffer& guarded() {
  static fuzz::GuardedBuffer buffer(1 << 20);
  return buffer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return -1;
  const std::string_view bytes = guarded().place({reinterpret_cast<const char*>(data), size});

  // The walker and ei agree on where a term ends, at every offset.
  const chat::term::Limits limits;
  for (size_t at = 0; at < bytes.size() && at < 64; ++at) {
    size_t offset = at;
    const auto t = chat::term::decode_at(bytes, &offset, limits);
    if (t) {
      const auto walked = chat::term::encoded_size(bytes, at, limits.max_depth);
      FUZZ_CHECK(walked.has_value());
      FUZZ_CHECK(offset == at + *walked);
      FUZZ_CHECK(offset <= bytes.size());
    } else {
      FUZZ_CHECK(offset == at);
    }
  }

  const auto t = chat::term::decode(bytes);
  if (!t) return 0;
  const std::string once = chat::term::encode(*t);
  const auto back = chat::term::decode(guarded().place(once));
  FUZZ_CHECK(back.has_value());  // what we decoded, we can send back out
  FUZZ_CHECK(chat::term::encode(*back) == once);
  if (!has_nan(*t)) FUZZ_CHECK(*back == *t);
  // Rendering for logs must cope with anything that decoded.
  (void)chat::term::to_erlang_string(*t);
  (void)chat::term::to_elixir_string(*t);
  return 0;
}
