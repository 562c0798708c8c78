// Target "frames": what an authenticated peer can send after the handshake.
//
// Input: the raw byte stream of the connection (4-byte length frames, ticks included). It
// goes through FrameReader, parse_message and Node::control of a node running the kernel
// services (net_kernel, global_name_server and its locker, the pg scope) and the chat
// services (Task.Supervisor, Chat inbox, rex, spawn requests) with in-memory
// transport and timers, just as net/connection.cpp drives them: the first frame that does not
// parse, or that control() rejects, ends the connection. Then every queued signal runs,
// pending timers fire, and the peer goes down (its links and monitors fire too).
//
// Invariants besides "no crash, no sanitizer report": every message the node sends back must
// be a well-formed distribution message (it would otherwise break the peer's connection), and
// the frame parser's reader by hand for plain sends must agree with its general path.
//
// The first frame decides the form, as the handshake would have: one that starts with 131 is
// a distribution header and the connection keeps an atom cache; otherwise pass-through.
//
// Seeds (test/fuzz/corpus/frames) are frames a real BEAM sent to chat-node, captured by
// test/fuzz/capture; one file per frame, header included. Those named dist-header-* are
// streams in the header form, whose later frames name atoms the earlier ones cached.
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "chat/chat/services.hpp"
#include "chat/dist/constants.hpp"
#include "chat/dist/framing.hpp"
#include "chat/node/node.hpp"
#include "common.hpp"
#include "fakes.hpp"

namespace {

// Real connections allow 128 MiB (net::Config::max_frame); a smaller limit keeps the fuzzer
// from spending its time in allocations. The limit check itself is the same code.
constexpr size_t kMaxFrame = 1 << 20;

std::FILE* sink() {
  static std::FILE* f = std::fopen("/dev/null", "w");
  return f;
}

fuzz::GuardedBuffer& guarded() {
  static fuzz::GuardedBuffer buffer(kMaxFrame);
  return buffer;
}

void check_sent(test::FakeTransport& transport, chat::dist::FrameForm form = chat::dist::FrameForm::kPassThrough) {
  for (const auto& s : transport.take()) {
    std::string frame;
    chat::dist::append_frame(frame, s.control, s.payload ? &*s.payload : nullptr, form);
    FUZZ_CHECK(frame.size() >= 4);
    chat::dist::AtomCache cache;  // what the peer keeps: frames from us name no atom
    const auto back = chat::dist::parse_message(guarded().place(std::string_view(frame).substr(4)), {}, nullptr,
                                                nullptr, form == chat::dist::FrameForm::kDistHeader ? &cache : nullptr);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(back->has_payload() == s.payload.has_value());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 2 * kMaxFrame) return -1;
  chat::service::Output out(sink());
  chat::kernel::Kernel kernel;
  chat::service::ChatContext ctx{out, {}, &kernel, {}, {}};
  test::FakeTransport transport;
  test::FakeTimers timers;
  transport.connected[fuzz::kPeerName] = chat::dist::flag::kOurs;
  chat::node::Node node(fuzz::kNodeName, transport, timers);
  node.set_creation(fuzz::kNodeCreation);
  chat::kernel::start_kernel(node, kernel);
  chat::service::start_services(node, ctx);
  node.drain();
  node.peer_up(fuzz::kPeerName);

  chat::dist::FrameReader reader(kMaxFrame);
  fuzz::Chunker chunks(size > 0 ? data[size - 1] : 0);
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  bool open = true;
  std::optional<chat::dist::FrameForm> form;
  chat::dist::AtomCache cache;
  for (size_t fed = 0; open && fed < stream.size();) {
    const size_t n = chunks.next(stream.size() - fed);
    reader.feed(stream.substr(fed, n));
    fed += n;
    std::string_view frame;
    for (;;) {
      const auto status = reader.next(&frame);
      if (status == chat::dist::FrameReader::Status::kNeedMore) break;
      if (status == chat::dist::FrameReader::Status::kTick) continue;
      if (status == chat::dist::FrameReader::Status::kMalformed) {
        open = false;
        break;
      }
      FUZZ_CHECK(!frame.empty() && frame.size() <= kMaxFrame);
      // The first frame says which form the connection negotiated, as the handshake would:
      // a distribution header (131) and an atom cache, or pass-through (112).
      if (!form) form = static_cast<uint8_t>(frame[0]) == chat::dist::kVersionMagic ? chat::dist::FrameForm::kDistHeader
                                                                                   : chat::dist::FrameForm::kPassThrough;
      const std::string_view placed = guarded().place(frame);
      auto* frame_cache = form == chat::dist::FrameForm::kDistHeader ? &cache : nullptr;
      auto msg = chat::dist::parse_message(placed, {}, nullptr, nullptr, frame_cache);
      // The reader by hand says what the general decoder says, and refuses what it refuses
      // (reading a header again sets its atoms to what they already are).
      const auto general = chat::dist::parse_message(placed, {}, nullptr, nullptr, frame_cache, false);
      FUZZ_CHECK(msg.has_value() == general.has_value());
      if (msg && general) {
        FUZZ_CHECK(msg->control_term() == general->control);
        FUZZ_CHECK(msg->has_payload() == general->has_payload());
      }
      if (!msg || !node.message(fuzz::kPeerName, std::move(*msg))) {
        open = false;
        break;
      }
    }
    node.drain();
    check_sent(transport, form.value_or(chat::dist::FrameForm::kPassThrough));
  }

  // Timers (task start timeouts, io reply timeouts) fire; whatever they start runs too.
  for (int round = 0; round < 4 && !timers.pending.empty(); ++round) {
    timers.advance(UINT64_MAX);
    node.drain();
    check_sent(transport, form.value_or(chat::dist::FrameForm::kPassThrough));
  }
  transport.connected.erase(fuzz::kPeerName);
  node.peer_down(fuzz::kPeerName);
  node.drain();
  check_sent(transport, form.value_or(chat::dist::FrameForm::kPassThrough));
  out.flush();
  return 0;
}
