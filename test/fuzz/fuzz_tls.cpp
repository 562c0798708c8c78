// Target "tls": the TLS session under a distribution stream (src/tls/session.cpp), on hostile
// bytes and around TLS-wrapped distribution traffic.
//
// Input: a control byte, then data. Bit 0 of the control byte picks the mode:
//   0  raw: the data is what a peer sends to a fresh server session (and, after its
//      ClientHello, to a fresh client session), in chunks the control byte's upper bits
//      choose. Nothing may crash; a failed session stays failed and says why.
//   1  wrapped: a client and a server complete a mutual handshake (TLS 1.3, or 1.2 with bit
//      1), then the client sends the data as distribution traffic, in writes of chunker
//      sizes; the records reach the server in other chunks, and the server's plaintext goes
//      where net::Connection puts it (a frame's own buffer through direct_area/header_area,
//      else the shared buffer and feed()). With bit 2 one byte of the records is flipped on
//      the way. Invariants: without the flip, the frames read are exactly those a plain
//      FrameReader reads from the data; with it, the session fails or delivers a prefix of
//      the data, never other bytes.
//
// Seeds (test/fuzz/corpus/tls): a ClientHello of OpenSSL and of OTP 25's ssl, a BEAM's
// plain send_name (what a node without TLS sends to a TLS port), and distribution frames
// from corpus/frames in wrapped mode.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "chat/dist/framing.hpp"
#include "chat/tls/engine.hpp"
#include "chat/tls/openssl.hpp"
#include "common.hpp"

using chat::tls::Context;
using chat::tls::Session;
using chat::tls::Side;
using chat::tls::SideOptions;

namespace {

constexpr size_t kMaxFrame = 1 << 20;

struct Pki {
  chat::tls::Issued ca = chat::tls::openssl_engine().make_ca("fuzz CA", {});
  chat::tls::Issued node = chat::tls::openssl_engine().issue_node_cert(ca.cert_pem, ca.key_pem, {"127.0.0.1"}, {});
  SideOptions side(bool server, bool tls12) const {
    SideOptions o;
    o.cert_pem = node.cert_pem;
    o.key_pem = node.key_pem;
    o.cacert_pem = ca.cert_pem;
    o.verify = chat::tls::Verify::kPeer;
    o.fail_if_no_peer_cert = server;
    if (tls12) o.versions = {"tlsv1.2"};
    return o;
  }
};

struct Contexts {
  std::shared_ptr<Context> server;
  std::shared_ptr<Context> client;
};

const Contexts& contexts(bool tls12) {
  static const Pki pki;
  const auto& e = chat::tls::openssl_engine();
  static const Contexts c13{e.context(pki.side(true, false), Side::kServer), e.context(pki.side(false, false), Side::kClient)};
  static const Contexts c12{e.context(pki.side(true, true), Side::kServer), e.context(pki.side(false, true), Side::kClient)};
  return tls12 ? c12 : c13;
}

// Reads everything the session has; plaintext to `plain`. False once it failed or closed.
bool drain(Session& s, std::string& plain) {
  static char buf[16384];
  for (;;) {
    const auto r = s.read(buf);
    if (r.status == Session::Status::kData) {
      FUZZ_CHECK(r.n > 0 && r.n <= sizeof buf);
      plain.append(buf, r.n);
      continue;
    }
    if (r.status == Session::Status::kFailed) FUZZ_CHECK(s.failed() && !s.error().empty());
    return r.status == Session::Status::kNeedMore;
  }
}

void feed_chunks(Session& s, std::string_view bytes, fuzz::Chunker& chunks, std::string& plain) {
  size_t at = 0;
  while (at < bytes.size()) {
    const size_t n = chunks.next(bytes.size() - at);
    s.feed(bytes.substr(at, n));
    at += n;
    const bool alive = drain(s, plain);
    s.end_feed();
    if (!alive) return;
  }
}

void raw(std::string_view data, uint8_t control) {
  const auto& c = contexts((control & 2U) != 0);
  auto server = c.server->server_session();
  FUZZ_CHECK(server != nullptr);
  std::string plain;
  fuzz::Chunker chunks(control);
  feed_chunks(*server, data, chunks, plain);
  // Nothing authenticated it: no plaintext can have come out.
  FUZZ_CHECK(plain.empty());
  if (server->failed()) {
    std::string buf(16, '\0');
    FUZZ_CHECK(server->read(buf).status == Session::Status::kFailed);
  }

  auto client = c.client->client_session("127.0.0.1");
  FUZZ_CHECK(client != nullptr);
  client->start();
  std::string hello;
  client->take_output(hello);
  FUZZ_CHECK(!hello.empty());
  fuzz::Chunker chunks2(static_cast<uint8_t>(control ^ 0x5aU));
  feed_chunks(*client, data, chunks2, plain);
  FUZZ_CHECK(plain.empty());
}

// The frames a FrameReader finds in `bytes`, the way net::Connection reads them over TLS:
// into the frame's own buffer when the reader offers one, else through feed().
struct FrameSink {
  chat::dist::FrameReader reader{kMaxFrame};
  std::vector<std::string> frames;
  bool malformed = false;
  uint8_t mode;
  explicit FrameSink(uint8_t m) : mode(m) {}

  void collect() {
    std::string_view frame;
    for (;;) {
      const auto st = reader.next(&frame);
      if (st == chat::dist::FrameReader::Status::kNeedMore) return;
      if (st == chat::dist::FrameReader::Status::kMalformed) {
        malformed = true;
        return;
      }
      frames.emplace_back(st == chat::dist::FrameReader::Status::kTick ? std::string("<tick>") : std::string(frame));
    }
  }
  // One read from the session, as Stream::tls_received does it.
  Session::ReadResult read(Session& s) {
    static char shared[16384];
    std::span<char> area = reader.direct_area((mode & 8U) != 0 ? 0 : 64);
    if (area.empty() && (mode & 16U) != 0) area = reader.header_area();
    const bool in_place = !area.empty();
    const auto r = s.read(in_place ? area : std::span<char>(shared));
    if (r.status == Session::Status::kData) {
      if (in_place) {
        reader.commit(r.n);
      } else {
        reader.feed(std::string_view(shared, r.n));
      }
      collect();
    }
    return r;
  }
};

void wrapped(std::string_view data, uint8_t control) {
  const auto& c = contexts((control & 2U) != 0);
  auto client = c.client->client_session("127.0.0.1");
  auto server = c.server->server_session();
  FUZZ_CHECK(client && server);
  client->start();
  std::string wire;
  std::string ignored;
  for (int round = 0; round < 8 && !(client->established() && server->established()); ++round) {
    client->take_output(wire);
    server->feed(wire);
    FUZZ_CHECK(drain(*server, ignored));
    server->end_feed();
    server->take_output(wire);
    client->feed(wire);
    FUZZ_CHECK(drain(*client, ignored));
    client->end_feed();
  }
  FUZZ_CHECK(client->established() && server->established() && ignored.empty());
  // TLS 1.2 ends with the server's Finished, which the loop above delivered; TLS 1.3 may
  // leave nothing more. Anything left for the server (none expected) goes with the data.

  fuzz::Chunker writes(control);
  std::string records;
  for (size_t at = 0; at < data.size();) {
    const size_t n = writes.next(data.size() - at);
    FUZZ_CHECK(client->write(data.substr(at, n)));
    at += n;
  }
  client->take_output(records);
  const bool flip = (control & 4U) != 0 && !records.empty();
  if (flip) records[(control * 131U + data.size()) % records.size()] ^= 0x20;

  FrameSink sink(control);
  fuzz::Chunker reads(static_cast<uint8_t>(control >> 3U));
  bool alive = true;
  for (size_t at = 0; at < records.size() && alive;) {
    const size_t n = reads.next(records.size() - at);
    server->feed(std::string_view(records).substr(at, n));
    at += n;
    for (;;) {
      const auto r = sink.read(*server);
      if (r.status == Session::Status::kData) continue;
      alive = r.status == Session::Status::kNeedMore;
      break;
    }
    server->end_feed();
  }

  chat::dist::FrameReader reference(kMaxFrame);
  reference.feed(data);
  std::vector<std::string> expected;
  std::string_view frame;
  for (;;) {
    const auto st = reference.next(&frame);
    if (st == chat::dist::FrameReader::Status::kNeedMore || st == chat::dist::FrameReader::Status::kMalformed) break;
    expected.emplace_back(st == chat::dist::FrameReader::Status::kTick ? std::string("<tick>") : std::string(frame));
  }
  if (!flip) {
    FUZZ_CHECK(alive);
    FUZZ_CHECK(sink.frames == expected);
  } else {
    // Only authentic bytes come out: what was read is a prefix of the frames sent.
    FUZZ_CHECK(sink.frames.size() <= expected.size());
    for (size_t k = 0; k < sink.frames.size(); ++k) FUZZ_CHECK(sink.frames[k] == expected[k]);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (1U << 18U)) return 0;
  const uint8_t control = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((control & 1U) == 0) {
    raw(rest, control);
  } else {
    wrapped(rest, control);
  }
  return 0;
}
