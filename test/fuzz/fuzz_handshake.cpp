// Target "handshake": the version-6 distribution handshake state machine on hostile bytes.
//
// Input: one control byte, then the byte stream a peer sends. The same stream is fed to an
// acceptor and to an initiator (after it produced its send_name), in chunks whose sizes come
// from the control byte's upper bits; its lower three bits choose what the acceptor's
// admission check answers (0 ok, 1 ok_simultaneous, 2 nok, 3 not_allowed, 4 alive, else ok).
//
// Seeds (test/fuzz/corpus/handshake) are the messages real BEAMs sent to chat-node and to
// an initiating chat-node, with the digests recomputed for this harness's fixed challenge.
#include <cstddef>
#include <cstdint>
#include <string>

#include "chat/dist/constants.hpp"
#include "chat/dist/handshake.hpp"
#include "common.hpp"

using chat::dist::Admission;
using chat::dist::Handshake;
using chat::dist::HandshakeConfig;

namespace {

constexpr uint32_t kChallenge = 0x2a2a2a2a;

HandshakeConfig config(Admission admission) {
  HandshakeConfig c;
  c.our_name = fuzz::kNodeName;
  c.our_flags = chat::dist::flag::kOurs;
  c.required_flags = chat::dist::flag::kRequired;
  c.our_creation = fuzz::kNodeCreation;
  c.cookie = fuzz::kCookie;
  c.random32 = [] { return kChallenge; };
  c.admit = [admission](const std::string&) { return admission; };
  return c;
}

void run(Handshake& h, std::string_view stream, uint8_t seed) {
  fuzz::Chunker chunks(seed);
  auto result = Handshake::Result::kNeedMore;
  size_t fed = 0;
  while (fed < stream.size()) {
    const size_t n = chunks.next(stream.size() - fed);
    result = h.feed(stream.substr(fed, n));
    fed += n;
    (void)h.take_output();
    if (result == Handshake::Result::kFailed) {
      FUZZ_CHECK(!h.error().empty());
      // Once failed, it stays failed.
      FUZZ_CHECK(h.feed(stream.substr(fed)) == Handshake::Result::kFailed);
      return;
    }
    if (result == Handshake::Result::kDone) {
      const auto& peer = h.peer();
      FUZZ_CHECK(!peer.name.empty() && peer.name.find('@') != std::string::npos);
      FUZZ_CHECK((peer.flags & chat::dist::flag::kRequired) == chat::dist::flag::kRequired);
      FUZZ_CHECK((peer.flags & ~chat::dist::flag::kOurs) == 0);
      FUZZ_CHECK(!h.cookie_mismatch());
      // Everything after the handshake is left for the frame reader.
      FUZZ_CHECK(h.leftover().size() <= fed);
      (void)h.feed(stream.substr(fed));
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16384) return -1;
  const uint8_t control = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto admission = static_cast<Admission>((control & 7U) <= 4 ? (control & 7U) : 0U);
  const auto seed = static_cast<uint8_t>(control >> 3U);

  Handshake acceptor(Handshake::Role::kAcceptor, config(admission));
  FUZZ_CHECK(!acceptor.has_output());
  run(acceptor, stream, seed);

  Handshake initiator(Handshake::Role::kInitiator, config(Admission::kOk));
  FUZZ_CHECK(initiator.has_output());  // its send_name
  (void)initiator.take_output();
  run(initiator, stream, seed);
  return 0;
}
