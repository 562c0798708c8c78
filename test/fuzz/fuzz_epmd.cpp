// Target "epmd": the EPMD reply parsers on hostile bytes (a rogue EPMD, or anything listening
// on its port). Every input goes to all three parsers, whole and as every prefix for the
// incremental ones (a reply arrives in pieces).
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "chat/epmd/protocol.hpp"
#include "common.hpp"

using namespace chat::epmd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return -1;
  static fuzz::GuardedBuffer buffer(8192);
  const std::string input(reinterpret_cast<const char*>(data), size);

  for (size_t n = 0; n <= input.size(); ++n) {
    // Each prefix ends at the guard page.
    const std::string_view bytes = buffer.place(std::string_view(input).substr(0, n));

    size_t consumed = 0;
    const auto alive = parse_alive2_reply(bytes, &consumed);
    if (std::holds_alternative<Registered>(alive) || std::holds_alternative<Refused>(alive)) {
      FUZZ_CHECK(consumed > 0 && consumed <= bytes.size());
    }

    const auto port = parse_port2_reply(bytes);
    if (const auto* p = std::get_if<NodePort>(&port)) {
      FUZZ_CHECK(p->name.size() + 14 <= bytes.size());
    }
  }

  const std::string_view whole = buffer.place(input);
  const auto names = parse_names_reply(whole);
  size_t total = 0;
  for (const auto& [name, port] : names) {
    (void)port;
    total += name.size();
  }
  FUZZ_CHECK(total <= whole.size());
  return 0;
}
