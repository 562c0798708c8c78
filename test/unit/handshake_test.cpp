#include <doctest/doctest.h>

#include "chat/dist/bytes.hpp"
#include "chat/dist/constants.hpp"
#include "chat/dist/handshake.hpp"
#include "hex.hpp"

using namespace chat::dist;

namespace {

HandshakeConfig config(std::string name, std::string cookie, uint32_t challenge) {
  HandshakeConfig c;
  c.our_name = std::move(name);
  c.our_flags = flag::kOurs;
  c.required_flags = flag::kRequired;
  c.our_creation = 0x1234;
  c.cookie = std::move(cookie);
  c.random32 = [challenge] { return challenge; };
  return c;
}

// Moves bytes between the two sides `step` bytes at a time until neither has output.
void pump(Handshake& a, Handshake& b, size_t step, Handshake::Result& ra, Handshake::Result& rb) {
  for (int rounds = 0; rounds < 100; ++rounds) {
    const std::string to_b = a.take_output();
    const std::string to_a = b.take_output();
    if (to_a.empty() && to_b.empty()) return;
    for (size_t i = 0; i < to_b.size(); i += step) rb = b.feed(std::string_view(to_b).substr(i, step));
    for (size_t i = 0; i < to_a.size(); i += step) ra = a.feed(std::string_view(to_a).substr(i, step));
  }
}

std::string framed(const std::string& body) {
  std::string out;
  put_u16(out, static_cast<uint16_t>(body.size()));
  return out + body;
}

}  // namespace

TEST_SUITE("handshake") {
  TEST_CASE("digest is MD5 of the cookie and the challenge in decimal, as a BEAM computes it") {
    // erlang:md5("secretcookie" ++ integer_to_list(3735928559))
    CHECK(test::hex(Handshake::digest(3735928559U, "secretcookie")) == "4d9757cd7ae773aaf1a08d00ff981318");
  }

  TEST_CASE("two sides with the same cookie agree, whatever the read sizes") {
    for (size_t step : {size_t{1}, size_t{2}, size_t{7}, size_t{1000}}) {
      CAPTURE(step);
      Handshake a(Handshake::Role::kInitiator, config("a@host", "cookie", 11));
      Handshake b(Handshake::Role::kAcceptor, config("b@host", "cookie", 22));
      auto ra = Handshake::Result::kNeedMore;
      auto rb = Handshake::Result::kNeedMore;
      pump(a, b, step, ra, rb);
      CHECK(ra == Handshake::Result::kDone);
      CHECK(rb == Handshake::Result::kDone);
      CHECK(a.peer().name == "b@host");
      CHECK(b.peer().name == "a@host");
      CHECK(a.peer().flags == flag::kOurs);
      CHECK(b.peer().creation == 0x1234);
    }
  }

  TEST_CASE("over TLS every message has a 4-byte length, as on inet_tls_dist's {packet, 4} socket") {
    for (size_t step : {size_t{1}, size_t{3}, size_t{1000}}) {
      CAPTURE(step);
      auto ca = config("a@host", "cookie", 11);
      auto cb = config("b@host", "cookie", 22);
      ca.length_bytes = cb.length_bytes = 4;
      Handshake a(Handshake::Role::kInitiator, ca);
      Handshake b(Handshake::Role::kAcceptor, cb);
      // send_name: 'N', Flags:64, Creation:32, NLen:16, "a@host" = 21 bytes after the length.
      const std::string first = a.take_output();
      CHECK(test::hex(first.substr(0, 5)) == "000000154e");
      auto ra = Handshake::Result::kNeedMore;
      auto rb = b.feed(first);
      pump(a, b, step, ra, rb);
      CHECK(ra == Handshake::Result::kDone);
      CHECK(rb == Handshake::Result::kDone);
      CHECK(b.peer().name == "a@host");
    }
    // A 2-byte-framed peer on a 4-byte side: its length reads as far too long.
    auto c4 = config("b@host", "cookie", 22);
    c4.length_bytes = 4;
    Handshake b(Handshake::Role::kAcceptor, c4);
    Handshake a(Handshake::Role::kInitiator, config("a@host", "cookie", 11));
    CHECK(b.feed(a.take_output()) == Handshake::Result::kFailed);
  }

  TEST_CASE("a wrong cookie is refused by the acceptor and never acknowledged") {
    Handshake a(Handshake::Role::kInitiator, config("a@host", "right", 11));
    Handshake b(Handshake::Role::kAcceptor, config("b@host", "wrong", 22));
    auto ra = Handshake::Result::kNeedMore;
    auto rb = Handshake::Result::kNeedMore;
    pump(a, b, 1000, ra, rb);
    CHECK(rb == Handshake::Result::kFailed);
    CHECK(b.cookie_mismatch());
    CHECK(ra == Handshake::Result::kNeedMore);
    CHECK(a.awaiting_ack());
  }

  TEST_CASE("bytes after the handshake are left for the frame reader") {
    Handshake a(Handshake::Role::kInitiator, config("a@host", "c", 1));
    Handshake b(Handshake::Role::kAcceptor, config("b@host", "c", 2));
    b.feed(a.take_output());
    a.feed(b.take_output());           // status + challenge
    b.feed(a.take_output());           // reply
    const std::string ack = b.take_output();
    CHECK(a.feed(ack + std::string("\0\0\0\0", 4)) == Handshake::Result::kDone);
    CHECK(a.leftover().size() == 4);
  }

  TEST_CASE("an OTP 23+ peer using the old 'n' name completes its flags with 'c'") {
    Handshake b(Handshake::Role::kAcceptor, config("b@host", "c", 5));
    std::string name = "n";
    put_u16(name, 5);
    put_u32(name, static_cast<uint32_t>(flag::kOurs & 0xffffffffULL));
    name += "old@host";
    CHECK(b.feed(framed(name)) == Handshake::Result::kNeedMore);
    const std::string out = b.take_output();
    CHECK(out.substr(2, 3) == "sok");
    std::string complement = "c";
    put_u32(complement, static_cast<uint32_t>(flag::kOurs >> 32));
    put_u32(complement, 77);
    CHECK(b.feed(framed(complement)) == Handshake::Result::kNeedMore);
    std::string reply = "r";
    put_u32(reply, 9);
    reply += Handshake::digest(5, "c");
    CHECK(b.feed(framed(reply)) == Handshake::Result::kDone);
    CHECK(b.peer().creation == 77);
    CHECK(b.peer().flags == flag::kOurs);
    CHECK(b.take_output() == framed("a" + Handshake::digest(9, "c")));
  }

  TEST_CASE("the acceptor refuses peers without the mandatory flags") {
    Handshake b(Handshake::Role::kAcceptor, config("b@host", "c", 5));
    std::string name = "N";
    put_u64(name, flag::kPublished);  // nothing else
    put_u32(name, 1);
    put_u16(name, 6);
    name += "x@host";
    CHECK(b.feed(framed(name)) == Handshake::Result::kFailed);
  }

  TEST_CASE("admission decides the status: nok ends the handshake") {
    auto cfg = config("b@host", "c", 5);
    cfg.admit = [](const std::string&) { return Admission::kNok; };
    Handshake b(Handshake::Role::kAcceptor, cfg);
    Handshake a(Handshake::Role::kInitiator, config("a@host", "c", 1));
    CHECK(b.feed(a.take_output()) == Handshake::Result::kFailed);
    CHECK(b.take_output() == framed("snok"));
    CHECK(a.feed(framed("snok")) == Handshake::Result::kFailed);
  }

  TEST_CASE("hostile handshake input fails cleanly") {
    for (const std::string& bad : {framed(""), std::string("\xff\xff", 2), framed("Nshort"), framed("x"),
                                   framed("N" + std::string(14, '\0') + "\xff\xff")}) {
      Handshake b(Handshake::Role::kAcceptor, config("b@host", "c", 5));
      CHECK(b.feed(bad) != Handshake::Result::kDone);
    }
    // Every prefix of a valid name message just waits for more.
    Handshake a(Handshake::Role::kInitiator, config("a@host", "c", 1));
    const std::string name = a.take_output();
    for (size_t n = 0; n < name.size(); ++n) {
      Handshake b(Handshake::Role::kAcceptor, config("b@host", "c", 5));
      CHECK(b.feed(std::string_view(name).substr(0, n)) == Handshake::Result::kNeedMore);
    }
    // A peer name without '@' is refused.
    std::string noat = "N";
    put_u64(noat, flag::kOurs);
    put_u32(noat, 1);
    put_u16(noat, 4);
    noat += "nope";
    Handshake b(Handshake::Role::kAcceptor, config("b@host", "c", 5));
    CHECK(b.feed(framed(noat)) == Handshake::Result::kFailed);
  }

  TEST_CASE("the initiator's send_name has the version 6 layout") {
    Handshake a(Handshake::Role::kInitiator, config("a@h", "c", 1));
    const std::string out = a.take_output();
    // <<Len:16, 'N', Flags:64, Creation:32, NLen:16, Name>>
    REQUIRE(out.size() == 2 + 1 + 8 + 4 + 2 + 3);
    CHECK(get_u16(out, 0) == out.size() - 2);
    CHECK(out[2] == 'N');
    CHECK(get_u64(out, 3) == flag::kOurs);
    CHECK(get_u32(out, 11) == 0x1234);
    CHECK(out.substr(17) == "a@h");
  }
}
