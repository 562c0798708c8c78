// Frames with a distribution header (DFLAG_DIST_HDR_ATOM_CACHE): the header's atom cache
// references, the terms that name them, and the header form this node writes.
#include <doctest/doctest.h>

#include <string>

#include "chat/dist/framing.hpp"
#include "chat/term/validate.hpp"
#include "hex.hpp"

using namespace chat;
using term::atom;
using term::Term;
using test::bytes;

namespace {

// Puts 'a@b' at cache index 4*256+10 and 'c@d' at 0*256+5, the two entries the example
// below takes as already cached; the frame carries {2, '', 'a@b'} and no payload.
std::string seeding_frame() {
  return bytes({131, 68, 2, 0x8c, 0x00, 10, 3, 'a', '@', 'b', 5, 3, 'c', '@', 'd'}) +
         bytes({104, 3, 97, 2, 119, 0, 82, 0});
}

// The example of the erts "External Term Format" chapter, with a normal header (68) in place
// of the fragment header: two cached atoms, three new ones ('reg', 'call', 'set_get_state'),
// then REG_SEND {6, Pid, '', reg} and {call, Pid, {set_get_state, <<0:1024>>}}. The pids
// are PID_EXT, their node the first cached atom.
std::string example_frame() {
  std::string f = bytes({131, 68, 5, 4, 137, 9, 10, 5, 236, 3, 'r', 'e', 'g', 9, 4, 'c', 'a', 'l', 'l', 238, 13});
  f += "set_get_state";
  f += bytes({104, 4, 97, 6, 103, 82, 0, 0, 0, 0, 85, 0, 0, 0, 0, 2, 82, 1, 82, 2});
  f += bytes({104, 3, 82, 3, 103, 82, 0, 0, 0, 0, 245, 0, 0, 0, 2, 2, 104, 2, 82, 4, 109, 0, 0, 0, 128});
  f += std::string(128, '\0');
  return f;
}

}  // namespace

TEST_SUITE("framing") {
  TEST_CASE("a distribution header's new atoms stay cached for later frames") {
    dist::AtomCache cache;
    auto first = dist::parse_message(seeding_frame(), {}, nullptr, nullptr, &cache);
    REQUIRE(first.has_value());
    CHECK(first->control_term() == term::tuple({Term{int64_t{2}}, atom(""), atom("a@b")}));
    CHECK_FALSE(first->has_payload());
    CHECK(cache.size() == 2);

    const std::string frame = example_frame();  // a plain send's views point into it
    auto m = dist::parse_message(frame, {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    CHECK(m->control_term() == term::tuple({Term{int64_t{6}}, term::Pid{"a@b", 85, 0, 2}, atom("c@d"), atom("reg")}));
    REQUIRE(m->payload.has_value());
    CHECK(*m->payload == term::tuple({atom("call"), term::Pid{"a@b", 245, 2, 2},
                                      term::tuple({atom("set_get_state"), term::binary(std::string(128, '\0'))})}));
    CHECK(cache.size() == 5);
  }

  TEST_CASE("a header naming an entry no header has set is refused") {
    dist::AtomCache cache;
    CHECK_FALSE(dist::parse_message(example_frame(), {}, nullptr, nullptr, &cache).has_value());
  }

  TEST_CASE("long atoms take two length bytes") {
    std::string name;  // 200 characters, 400 bytes
    for (int k = 0; k < 200; ++k) name += "\xc3\xa9";
    // One new reference (flag 8: new, segment 0) and the LongAtoms bit in the next half byte.
    std::string f = bytes({131, 68, 1, 0x18, 7, 1, 144}) + name;
    f += bytes({104, 2, 97, 2, 82, 0});
    dist::AtomCache cache;
    auto m = dist::parse_message(f, {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    CHECK(m->control_term() == term::tuple({Term{int64_t{2}}, atom(name)}));
    // 256 characters is one too many for an atom.
    std::string too_long = bytes({131, 68, 1, 0x18, 7, 1, 0}) + std::string(256, 'x') + bytes({104, 2, 97, 2, 82, 0});
    CHECK_FALSE(dist::parse_message(too_long, {}, nullptr, nullptr, &cache).has_value());
  }

  TEST_CASE("a header-form frame is refused where pass-through is due, and the other way round") {
    dist::AtomCache cache;
    REQUIRE(dist::parse_message(seeding_frame(), {}, nullptr, nullptr, &cache).has_value());
    CHECK_FALSE(dist::parse_message(seeding_frame()).has_value());
    CHECK_FALSE(dist::parse_message(test::unhex("7083" "680161" "02"), {}, nullptr, nullptr, &cache).has_value());
  }

  TEST_CASE("malformed headers and references do not parse") {
    const auto parses = [](const std::string& f) {
      dist::AtomCache cache;
      return dist::parse_message(f, {}, nullptr, nullptr, &cache).has_value();
    };
    CHECK(parses(bytes({131, 68, 0, 104, 1, 97, 2})));
    CHECK_FALSE(parses(bytes({131, 68})));                                    // no count
    CHECK_FALSE(parses(bytes({131, 68, 1})));                                 // no flags
    CHECK_FALSE(parses(bytes({131, 68, 1, 0x08, 7, 5, 'a', 'b'})));           // text cut short
    CHECK_FALSE(parses(bytes({131, 68, 1, 0x08, 7, 2, 0xc0, 0x80, 104, 1, 82, 0})));  // overlong UTF-8
    CHECK_FALSE(parses(bytes({131, 68, 1, 0x08, 7, 1, 'a', 104, 1, 82, 1})));  // index past the header's refs
    CHECK_FALSE(parses(bytes({131, 68, 0, 104, 1, 82, 0})));                  // a reference with no header refs
    CHECK_FALSE(parses(bytes({131, 68, 0, 104, 1, 97, 2, 131, 106})));        // a version byte before the payload
    CHECK_FALSE(parses(bytes({131, 69, 0, 104, 1, 97, 2})));                  // a fragment header: not negotiated
    // A node name with a NUL in it, given through the cache.
    CHECK_FALSE(parses(bytes({131, 68, 1, 0x08, 7, 3, 'a', 0, 'b', 104, 1, 88, 82, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})));
    CHECK(parses(bytes({131, 68, 1, 0x08, 7, 3, 'a', '@', 'b', 104, 1, 88, 82, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1})));
  }

  TEST_CASE("pids and references with cached node names") {
    std::string f = bytes({131, 68, 1, 0x08, 7, 3, 'a', '@', 'b'});
    f += bytes({104, 2, 88, 82, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 7});           // NEW_PID_EXT
    f += bytes({90, 0, 3, 82, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3});  // NEWER_REFERENCE_EXT
    dist::AtomCache cache;
    auto m = dist::parse_message(f, {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    CHECK(m->control_term() == term::tuple({term::Pid{"a@b", 9, 1, 7}, term::Ref{"a@b", 7, {1, 2, 3}}}));
  }

  TEST_CASE("terms kept as bytes get their cached atoms written out, funs their sizes") {
    // {Export, Fun}: fun lists:map/2 as EXPORT_EXT, and a NEW_FUN_EXT whose module, pid node
    // and free variable are cache references.
    std::string fun_body = bytes({1}) + std::string(16, '\x11') + bytes({0, 0, 0, 3, 0, 0, 0, 1});
    fun_body += bytes({82, 0, 97, 0, 97, 0, 88, 82, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 82, 1});
    const size_t fun_size = 4 + fun_body.size();
    std::string fun = bytes({112, 0, 0, 0, static_cast<int>(fun_size)}) + fun_body;
    std::string f = bytes({131, 68, 3, 0x88, 0x08, 0, 5, 'l', 'i', 's', 't', 's', 1, 3, 'm', 'a', 'p', 2, 3, 'a', '@', 'b'});
    f += bytes({104, 2, 113, 82, 0, 82, 1, 97, 2}) + fun;
    dist::AtomCache cache;
    auto m = dist::parse_message(f, {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    const auto* items = m->control.tuple(2);
    REQUIRE(items != nullptr);
    const auto* exp = (*items)[0].get<term::Raw>();
    REQUIRE(exp != nullptr);
    CHECK(test::hex(exp->encoded) == test::hex(bytes({113, 119, 5, 'l', 'i', 's', 't', 's', 119, 3, 'm', 'a', 'p', 97, 2})));
    const auto* raw_fun = (*items)[1].get<term::Raw>();
    REQUIRE(raw_fun != nullptr);
    // Three references of 2 bytes became atoms of 7, 5 and 5 bytes: the fun is 11 bytes longer,
    // and its bytes stand alone (the walk checks Size against them).
    CHECK(raw_fun->encoded.size() == fun.size() + 11);
    CHECK(term::encoded_size(raw_fun->encoded, 0, 16) == raw_fun->encoded.size());
  }

  TEST_CASE("header-form frames round-trip, and queued pass-through frames are rewritten into them") {
    const Term control = term::tuple({Term{int64_t{6}}, term::Pid{"a@b", 1, 0, 7}, atom(""), atom("reg")});
    const Term msg = term::tuple({atom("hello"), term::binary(std::string(100, 'z'))});
    std::string header_form;
    dist::append_frame(header_form, control, &msg, dist::FrameForm::kDistHeader);
    CHECK(test::hex(header_form.substr(4, 3)) == "834400");
    dist::AtomCache cache;
    auto m = dist::parse_message(std::string_view(header_form).substr(4), {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    CHECK(m->control_term() == control);
    CHECK(m->take_payload() == msg);

    std::string queued;
    dist::append_frame(queued, control, &msg);
    dist::append_tick(queued);
    dist::append_frame(queued, control, nullptr);
    const auto rewritten = dist::to_header_form(queued);
    REQUIRE(rewritten.has_value());
    std::string expected = header_form;
    dist::append_tick(expected);
    dist::append_frame(expected, control, nullptr, dist::FrameForm::kDistHeader);
    CHECK(test::hex(*rewritten) == test::hex(expected));
    CHECK_FALSE(dist::to_header_form(test::unhex("00000003" "708399")).has_value());
  }
}

TEST_SUITE("term") {
  TEST_CASE("UTF-8 checks hold across the eight-byte ASCII steps") {
    CHECK(term::valid_utf8(""));
    CHECK(term::valid_utf8("Elixir.Chat.TaskSupervisor"));
    CHECK(term::valid_utf8("abcdefg\xc3\xa9xyz"));        // a two-byte character across the first step
    CHECK(term::valid_utf8("abcdefgh\xf0\x9f\x90\x94"));  // a four-byte one right after it
    CHECK_FALSE(term::valid_utf8("abcdefgh\xc3"));        // cut short
    CHECK_FALSE(term::valid_utf8("abcdefghijklmnop\x80"));
    CHECK_FALSE(term::valid_utf8("abcdefgh\xed\xa0\x80"));  // a surrogate
    CHECK_FALSE(term::valid_utf8("abcdefg\xc0\x80"));       // overlong
  }
}
