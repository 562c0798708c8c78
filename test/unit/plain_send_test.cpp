// The frame parser's own reading of plain sends (SEND, SEND_SENDER, REG_SEND: dist::Send):
// it must say what the general decoder says of the same bytes, refuse what it refuses, and
// leave every other control to it.
#include <doctest/doctest.h>

#include <string>

#include "chat/dist/framing.hpp"
#include "hex.hpp"

using namespace chat;
using term::atom;
using term::Term;
using test::bytes;

namespace {

std::string pass_through(const Term& control, const Term& payload) {
  return "\x70" + term::encode(control) + term::encode(payload);
}

const term::Pid kFrom{"sender@127.0.0.1", 77, 3, 0x5a5a5a5a};  // a node name past the short-string buffer
const term::Pid kTo{"t@h", 9, 0, 1};

Term op(dist::Op o) { return Term{static_cast<int64_t>(o)}; }

// REG_SEND {6, From, '', 'Elixir.Chat'} + <<"hi">> in the header form, both names from the
// atom cache: 'sender@127.0.0.1' set at index 1 and 'Elixir.Chat' at index 2 of segment 0.
std::string cached_reg_send() {
  std::string f = bytes({131, 68, 2, 0x88, 0x00, 1, 16});
  f += "sender@127.0.0.1";
  f += bytes({2, 11});
  f += "Elixir.Chat";
  f += bytes({104, 4, 97, 6, 88, 82, 0, 0, 0, 0, 77, 0, 0, 0, 3, 0x5a, 0x5a, 0x5a, 0x5a, 119, 0, 82, 1});
  f += bytes({109, 0, 0, 0, 2, 'h', 'i'});
  return f;
}

}  // namespace

TEST_SUITE("framing") {
  TEST_CASE("plain sends are read without a control tuple and say what the tuple says") {
    const Term msg = term::binary("hi");
    const Term reg = term::tuple({op(dist::Op::kRegSend), kFrom, atom(""), atom("Elixir.Chat")});
    const Term sender = term::tuple({op(dist::Op::kSendSender), kFrom, kTo});
    const Term plain = term::tuple({op(dist::Op::kSend), atom(""), kTo});
    for (const Term* control : {&reg, &sender, &plain}) {
      CAPTURE(term::to_erlang_string(*control));
      const std::string frame = pass_through(*control, msg);  // a Send's views point into it
      auto m = dist::parse_message(frame);
      REQUIRE(m.has_value());
      REQUIRE(m->send.has_value());
      CHECK(m->control.is_nil());
      CHECK(m->control_term() == *control);
      REQUIRE(m->has_payload());
      CHECK(m->binary.has_value());  // a small binary stays in the frame, no term built
      CHECK_FALSE(m->payload.has_value());
      CHECK(m->take_payload() == msg);
      auto general = dist::parse_message(frame, {}, nullptr, nullptr, nullptr, false);  // what the fuzzer compares
      REQUIRE(general.has_value());
      CHECK_FALSE(general->send.has_value());
      CHECK(general->control == *control);
      CHECK(*general->payload == msg);
    }
    const std::string plain_frame = pass_through(plain, msg);
    auto m = dist::parse_message(plain_frame);
    CHECK(m->send->from.pid() == kTo);  // SEND names no sender: the receiver stands in
    CHECK(std::get<dist::PidView>(m->send->to).pid() == kTo);
    const std::string reg_frame = pass_through(reg, msg);
    m = dist::parse_message(reg_frame);
    CHECK(m->send->from.pid() == kFrom);
    CHECK(std::get<std::string_view>(m->send->to) == "Elixir.Chat");
  }

  TEST_CASE("a plain send naming cached atoms reads them from the header") {
    dist::AtomCache cache;
    const std::string frame = cached_reg_send();
    auto m = dist::parse_message(frame, {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    REQUIRE(m->send.has_value());
    CHECK(m->send->from.pid() == kFrom);
    CHECK(std::get<std::string_view>(m->send->to) == "Elixir.Chat");
    CHECK(m->take_payload() == term::binary("hi"));
    // A reference past the header's list is refused, as the general decoder refuses it.
    std::string f = cached_reg_send();
    f[f.size() - 8] = 2;  // the name's reference, 82 2
    dist::AtomCache fresh;
    CHECK_FALSE(dist::parse_message(f, {}, nullptr, nullptr, &fresh).has_value());
  }

  TEST_CASE("other controls and other forms of the elements go the general way") {
    const Term msg = atom("m");
    const term::Pid long_form{"a@b", 1, 2, 3};
    const std::vector<Term> controls = {
        // REG_SEND_TT: a trace token after the name.
        term::tuple({op(dist::Op::kRegSendTt), kFrom, atom(""), atom("n"), atom("tok")}),
        // A name that is not an atom, a sender that is not a pid: taken whole, refused by the node.
        term::tuple({op(dist::Op::kRegSend), kFrom, atom(""), Term{int64_t{5}}}),
        term::tuple({op(dist::Op::kSendSender), atom("x"), kTo}),
        // SEND with a used "unused" element.
        term::tuple({op(dist::Op::kSend), Term{int64_t{1}}, kTo}),
        // Arity other than the op's.
        term::tuple({op(dist::Op::kSendSender), kFrom, kTo, atom("extra")}),
        term::tuple({op(dist::Op::kLink), kFrom, kTo}),
    };
    for (const auto& c : controls) {
      CAPTURE(term::to_erlang_string(c));
      auto m = dist::parse_message(pass_through(c, msg));
      REQUIRE(m.has_value());
      CHECK_FALSE(m->send.has_value());
      CHECK(m->control == c);
    }
    // A pid whose node is ATOM_UTF8_EXT (two length bytes), which OTP does not send but may.
    std::string f = bytes({112, 131, 104, 3, 97, 22, 88, 118, 0, 3, 'a', '@', 'b', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3});
    f += bytes({88, 119, 3, 'a', '@', 'b', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 131, 106});
    auto m = dist::parse_message(f);
    REQUIRE(m.has_value());
    CHECK_FALSE(m->send.has_value());
    CHECK(m->control == term::tuple({op(dist::Op::kSendSender), long_form, long_form}));
  }

  TEST_CASE("a malformed plain send is refused, whatever part of it is wrong") {
    const Term reg = term::tuple({op(dist::Op::kRegSend), kFrom, atom(""), atom("Elixir.Chat")});
    const std::string whole = pass_through(reg, term::binary("hi"));
    // Cut anywhere: nothing, or at the end of the control a send without its payload.
    for (size_t n = 0; n < whole.size(); ++n) {
      CAPTURE(n);
      auto m = dist::parse_message(whole.substr(0, n));
      CHECK((!m || !m->has_payload()));
    }
    // A node name holding NUL, text that is not UTF-8: refused, as the term walk refuses them.
    std::string nul = whole;
    nul[nul.find("sender") + 2] = '\0';
    CHECK_FALSE(dist::parse_message(nul).has_value());
    std::string bad = whole;
    bad[bad.find("Elixir") + 1] = static_cast<char>(0xc0);
    CHECK_FALSE(dist::parse_message(bad).has_value());
    // Bytes after the payload.
    CHECK_FALSE(dist::parse_message(whole + "x").has_value());
  }

  TEST_CASE("a small binary payload is made directly, with its length checked against the frame") {
    const Term reg = term::tuple({op(dist::Op::kRegSend), kFrom, atom(""), atom("Elixir.Chat")});
    for (const size_t n : {size_t{0}, size_t{15}, size_t{16}, size_t{1000}}) {
      CAPTURE(n);
      const Term msg = term::binary(std::string(n, 'x'));
      const std::string f = pass_through(reg, msg);
      auto m = dist::parse_message(f);
      REQUIRE(m.has_value());
      CHECK(m->take_payload() == msg);
      // A length one more or one less than the bytes left: refused either way.
      for (const int delta : {-1, 1}) {
        std::string lie = f;
        const size_t at = lie.size() - n - 1;  // the length's last byte
        lie[at] = static_cast<char>(static_cast<uint8_t>(lie[at]) + delta);
        CHECK_FALSE(dist::parse_message(lie).has_value());
      }
    }
    // From kSharedMin bytes up the general decoder takes it, to share the frame's buffer.
    const Term big = term::binary(std::string(64 << 10, 'y'));
    auto m = dist::parse_message(pass_through(reg, big));
    REQUIRE(m.has_value());
    CHECK_FALSE(m->binary.has_value());
    CHECK(m->take_payload() == big);
  }
}

TEST_SUITE("framing") {
  TEST_CASE("a plain or alias send written from its parts is the frame its control tuple makes") {
    const std::string long_node(300, 'n');
    const term::Pid far{long_node + "@h", 1, 2, 3};
    const term::Ref alias{"amanda@10.0.0.1", 7, {1, 2, 3}};
    const term::Ref far_alias{long_node + "@h", 7, {4, 5}};
    const std::string long_name(256, 'x');
    const Term small = term::binary("hello");
    const Term large = term::binary(std::string(term::Binary::kSharedMin, 'b'));  // shared, by reference
    const dist::SendParts sends[] = {
        dist::SendParts::registered(kFrom, "Elixir.Chat"),
        dist::SendParts::registered(kFrom, ""),
        dist::SendParts::pid(kTo),
        dist::SendParts::pid(kFrom),
        // Past 255 bytes the atoms take ATOM_UTF8_EXT, written the general way.
        dist::SendParts::registered(far, "Elixir.Chat"),
        dist::SendParts::registered(kFrom, long_name),
        dist::SendParts::pid(far),
        dist::SendParts::to_alias(kFrom, alias),
        dist::SendParts::to_alias(far, alias),
        dist::SendParts::to_alias(kFrom, far_alias),
    };
    for (const auto form : {dist::FrameForm::kPassThrough, dist::FrameForm::kDistHeader}) {
      for (const auto& s : sends) {
        for (const Term* payload : {&small, &large}) {
          CAPTURE(term::to_erlang_string(s.control(), 200));
          std::string want;
          dist::append_frame(want, s.control(), payload, form);
          term::ChunkList got;
          got.text() = "before";  // a frame is appended after what the queue holds
          dist::append_send_frame(got, s, *payload, form);
          std::string flat;
          for (const auto& c : got.take()) flat.append(c.bytes());
          CHECK(flat == "before" + want);
        }
      }
    }
  }

  TEST_CASE("a plain send written from its parts reads back as the same send") {
    std::string out;
    term::Sink sink(out);
    dist::append_send_frame(sink, dist::SendParts::registered(kFrom, "Elixir.Chat"), term::binary("hi"));
    auto m = dist::parse_message(std::string_view(out).substr(4));
    REQUIRE(m.has_value());
    REQUIRE(m->send.has_value());
    CHECK(m->send->op == dist::Op::kRegSend);
    CHECK(m->send->from.pid() == kFrom);
    CHECK(std::get<std::string_view>(m->send->to) == "Elixir.Chat");
    CHECK(m->take_payload() == term::binary("hi"));
  }
}
