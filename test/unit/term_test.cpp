// Golden bytes were captured from Erlang/OTP 25 with term_to_binary(T, [{minor_version, 2}])
// (UTF-8 atoms, as the distribution sends them once UTF8_ATOMS is negotiated).
#include <doctest/doctest.h>
#include <ei.h>
#include <fmt/format.h>

#include <cstdio>

#include "chat/term/show.hpp"
#include "chat/term/term.hpp"
#include "chat/term/validate.hpp"
#include "hex.hpp"

using namespace chat::term;
using test::hex;
using test::unhex;

namespace {

// #PID<amanda@10.0.0.1.95.0>, creation 0x64c82c01 (NEW_PID_EXT)
Pid amanda_pid() { return Pid{"amanda@10.0.0.1", 95, 0, 0x64c82c01}; }
// NEWER_REFERENCE_EXT with words 0x00010203, 0x04050607, 0x08090a0b
Ref amanda_ref() { return Ref{"amanda@10.0.0.1", 0x64c82c01, {0x00010203, 0x04050607, 0x08090a0b}}; }

void check_golden(const Term& t, const char* golden_hex) {
  const std::string golden = unhex(golden_hex);
  CHECK(hex(encode(t)) == golden_hex);
  auto back = decode(golden);
  REQUIRE(back.has_value());
  CHECK(*back == t);
}

}  // namespace

TEST_SUITE("term") {
  TEST_CASE("scalars match a BEAM's encoding") {
    check_golden(Term{int64_t{42}}, "83612a");                       // SMALL_INTEGER_EXT
    check_golden(Term{int64_t{-5}}, "8362fffffffb");                 // INTEGER_EXT
    check_golden(Term{int64_t{100000}}, "8362000186a0");
    check_golden(Term{int64_t{1} << 40}, "836e0600000000000001");    // SMALL_BIG_EXT
    check_golden(Term{1.5}, "83463ff8000000000000");                 // NEW_FLOAT_EXT
    check_golden(atom("Elixir.Chat.TaskSupervisor"), "83771a456c697869722e436861742e5461736b53757065727669736f72");
    check_golden(atom("h\xc3\xa9"), "83770368c3a9");                 // SMALL_ATOM_UTF8_EXT
    check_golden(binary("Hello from Amanda!"), "836d0000001248656c6c6f2066726f6d20416d616e646121");
    check_golden(nil(), "836a");
  }

  TEST_CASE("containers, pids and refs match a BEAM's encoding") {
    check_golden(list({Term{int64_t{1}}, atom("foo"), binary("x")}), "836c0000000361017703666f6f6d00000001786a");
    check_golden(Map{{{atom("a"), Term{int64_t{1}}}}}, "8374000000017701616101");
    check_golden(amanda_pid(), "8358770f616d616e64614031302e302e302e310000005f0000000064c82c01");
    check_golden(amanda_ref(), "835a0003770f616d616e64614031302e302e302e3164c82c01000102030405060708090a0b");
    // The OTP 24+ gen_call tag [alias | Ref] is an improper list and must survive a round trip.
    check_golden(improper_list({atom("alias")}, amanda_ref()),
                 "836c000000017705616c6961735a0003770f616d616e64614031302e302e302e3164c82c01000102030405060708090a0b");
  }

  TEST_CASE("node names are shared between the pids a peer sends, and compare by their text") {
    const std::string golden = unhex("8358770f616d616e64614031302e302e302e310000005f0000000064c82c01");
    auto a = decode(golden);
    auto b = decode(golden);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    const auto* pa = a->get<Pid>();
    const auto* pb = b->get<Pid>();
    REQUIRE(pa != nullptr);
    REQUIRE(pb != nullptr);
    CHECK(pa->node.c_str() == pb->node.c_str());  // one block, not two

    // Past the recent-names table, the same text is a new block that still compares equal.
    for (int i = 0; i < 20; ++i) NodeName("n" + std::to_string(i) + "@10.0.0.1");
    const NodeName later("amanda@10.0.0.1");
    CHECK(later.c_str() != pa->node.c_str());
    CHECK(later == pa->node);
    CHECK((later <=> pa->node) == std::strong_ordering::equal);
    CHECK(NodeName("a@h") < NodeName("b@h"));
    CHECK(NodeName("b@h") > std::string("a@h"));
    CHECK(NodeName().empty());
    CHECK(NodeName() == std::string());
    CHECK(fmt::format("{}!", later) == "amanda@10.0.0.1!");
    CHECK("x " + later == "x amanda@10.0.0.1");
  }

  TEST_CASE("the encoder's own forms are ei's, byte for byte, on both sides of every size boundary") {
    const auto ei_bytes = [](auto&& encode) {
      int size = 0;
      encode(nullptr, &size);
      std::string out(static_cast<size_t>(size), '\0');
      int index = 0;
      encode(out.data(), &index);
      return out;
    };
    for (const int64_t v : {int64_t{0}, int64_t{1}, int64_t{255}, int64_t{256}, int64_t{-1}, (int64_t{1} << 27) - 1,
                            int64_t{1} << 27, -(int64_t{1} << 27), -(int64_t{1} << 27) - 1, INT64_MAX, INT64_MIN}) {
      CAPTURE(v);
      CHECK(encode(Term{v}).substr(1) == ei_bytes([&](char* b, int* i) { ei_encode_longlong(b, i, v); }));
    }
    for (const size_t arity : {size_t{0}, size_t{1}, size_t{255}, size_t{256}}) {
      CAPTURE(arity);
      const std::string got = encode(tuple(std::vector<Term>(arity, Term{int64_t{1}})));
      const std::string head = ei_bytes([&](char* b, int* i) { ei_encode_tuple_header(b, i, static_cast<int>(arity)); });
      CHECK(got.substr(1, head.size()) == head);
    }
    CHECK(encode(nil()).substr(1) == ei_bytes([](char* b, int* i) { ei_encode_empty_list(b, i); }));
    for (size_t words = 1; words <= RefIds::kMax; ++words) {
      for (const std::string& node : {std::string("amanda@10.0.0.1"), std::string(255, 'n')}) {
        CAPTURE(words);
        erlang_ref e{};
        std::snprintf(e.node, sizeof e.node, "%s", node.c_str());
        e.creation = 0x64c82c01;
        e.len = static_cast<int>(words);
        for (size_t k = 0; k < words; ++k) e.n[k] = 0x01020304U * static_cast<uint32_t>(k + 1);
        const Ref r{node, e.creation, RefIds(e.n, e.n + words)};
        CHECK(encode(r).substr(1) == ei_bytes([&](char* b, int* i) { ei_encode_ref(b, i, &e); }));
      }
    }
  }

  TEST_CASE("the Task.Supervisor start_task call decodes to its documented shape") {
    // {'$gen_call', {Pid, [alias | Ref]}, {start_task, [{Node, Pid, Pid}, monitor], temporary, nil}}
    const Term expected = tuple(
        {atom("$gen_call"), tuple({amanda_pid(), improper_list({atom("alias")}, amanda_ref())}),
         tuple({atom("start_task"),
                list({tuple({atom("amanda@10.0.0.1"), amanda_pid(), amanda_pid()}), atom("monitor")}),
                atom("temporary"), atom("nil")})});
    check_golden(expected,
                 "83680377092467656e5f63616c6c680258770f616d616e64614031302e302e302e310000005f0000000064c82c016c00000001"
                 "7705616c6961735a0003770f616d616e64614031302e302e302e3164c82c01000102030405060708090a0b6804770a737461"
                 "72745f7461736b6c000000026803770f616d616e64614031302e302e302e3158770f616d616e64614031302e302e302e3100"
                 "00005f0000000064c82c0158770f616d616e64614031302e302e302e310000005f0000000064c82c0177076d6f6e69746f72"
                 "6a770974656d706f7261727977036e696c");
  }

  TEST_CASE("charlists arrive as STRING_EXT and decode to a list of integers") {
    auto t = decode(unhex("836b0003616263"));
    REQUIRE(t.has_value());
    CHECK(*t == list({Term{int64_t{'a'}}, Term{int64_t{'b'}}, Term{int64_t{'c'}}}));
  }

  TEST_CASE("[X | []] decodes to the proper list [X], however the [] is spelled") {
    // LIST_EXT 1, 1, then as tail: an empty STRING_EXT; an empty LIST_EXT ending in NIL_EXT.
    for (const char* hex : {"836c0000000161016b0000", "836c0000000161016c000000006a"}) {
      CAPTURE(hex);
      auto t = decode(unhex(hex));
      REQUIRE(t.has_value());
      CHECK(*t == list({Term{int64_t{1}}}));
      CHECK(encode(*t) == unhex("836c0000000161016a"));
    }
  }

  TEST_CASE("terms this node does not model pass through unchanged") {
    for (const char* golden : {"836e0900000000000000000040",             // 2^70, a bignum
                               "837177056c697374737707726576657273656101"}) {  // fun lists:reverse/1
      auto t = decode(unhex(golden));
      REQUIRE(t.has_value());
      CHECK(t->get<Raw>() != nullptr);
      CHECK(hex(encode(*t)) == golden);
    }
  }

  TEST_CASE("every truncation of a valid term is rejected, never read past") {
    const std::string full = encode(tuple({atom("$gen_call"), tuple({amanda_pid(), amanda_ref()}),
                                           list({binary("abc"), Term{1.25}, Map{{{atom("k"), nil()}}}})}));
    for (size_t n = 0; n < full.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(decode(std::string_view(full).substr(0, n)).has_value());
    }
    CHECK(decode(full).has_value());
  }

  TEST_CASE("hostile lengths and nesting are refused") {
    CHECK_FALSE(decode(unhex("836d" "ffffffff" "41")).has_value());        // 4 GB binary, 1 byte present
    CHECK_FALSE(decode(unhex("836c" "7fffffff" "6a")).has_value());        // 2^31 elements
    CHECK_FALSE(decode(unhex("8374" "ffffffff")).has_value());             // map arity 2^32-1
    CHECK_FALSE(decode(unhex("8369" "ffffffff" "6a")).has_value());        // large tuple
    CHECK_FALSE(decode(unhex("835a" "0009" "7701" "61" "00000001" "00000000")).has_value());  // 9 ref words
    CHECK_FALSE(decode(unhex("8352" "00")).has_value());                   // atom cache ref: never negotiated
    CHECK_FALSE(decode(unhex("83" "ff")).has_value());                     // unknown tag
    CHECK_FALSE(decode(unhex("8358" "6101" "00000000000000000000000000")).has_value());  // pid node not an atom
    CHECK_FALSE(decode(unhex("836a" "6a")).has_value());                   // trailing bytes
    CHECK_FALSE(decode(unhex("84" "6a")).has_value());                     // wrong version byte

    std::string deep = "\x83";
    for (int i = 0; i < 100000; ++i) deep += "\x68\x01";  // {{{{...}}}}
    deep += "\x6a";
    CHECK_FALSE(decode(deep).has_value());
    // Nesting within the limit is fine.
    std::string shallow = "\x83";
    for (int i = 0; i < 100; ++i) shallow += "\x68\x01";
    shallow += "\x6a";
    CHECK(decode(shallow).has_value());
  }

  TEST_CASE("a large binary is shared, never copied; a small one is held inline") {
    const Term big = binary(std::string(Binary::kSharedMin, 'b'));
    const Term copy = big;  // NOLINT(performance-unnecessary-copy-initialization)
    REQUIRE(big.get<Binary>()->shared());
    CHECK(copy.get<Binary>()->bytes().data() == big.get<Binary>()->bytes().data());
    CHECK(copy == big);
    CHECK_FALSE(binary(std::string(Binary::kSharedMin - 1, 's')).get<Binary>()->shared());
    // A short view is copied rather than pinning a large buffer for a few bytes.
    CHECK_FALSE(Binary(SharedBytes(std::string(100, 'v'))).shared());
  }

  TEST_CASE("a large binary decoded with an owner stays in the decoded buffer") {
    const Term t = tuple({binary(std::string(Binary::kSharedMin, 'x')), binary("small")});
    const std::string encoded = encode(t);
    auto buffer = std::make_shared<const std::string>(encoded);
    size_t at = 1;
    auto back = decode_at(*buffer, &at, {}, buffer);
    REQUIRE(back.has_value());
    CHECK(*back == t);
    const auto& items = back->get<Tuple>()->items;
    const std::string_view big = items[0].get<Binary>()->bytes();
    CHECK(big.data() >= buffer->data());
    CHECK(big.data() + big.size() <= buffer->data() + buffer->size());
    CHECK_FALSE(items[1].get<Binary>()->shared());
    buffer.reset();  // the binary keeps the buffer alive
    CHECK(big == std::string(Binary::kSharedMin, 'x'));
    // Without an owner, the bytes are copied.
    at = 1;
    auto copied = decode_at(encoded, &at);
    REQUIRE(copied.has_value());
    const std::string_view c = copied->get<Tuple>()->items[0].get<Binary>()->bytes();
    CHECK((c.data() < encoded.data() || c.data() >= encoded.data() + encoded.size()));
  }

  TEST_CASE("renderings for logs and for iex users") {
    CHECK(to_elixir_string(atom("nil")) == "nil");
    CHECK(to_elixir_string(atom("ok")) == ":ok");
    CHECK(to_elixir_string(atom("Elixir.Chat")) == "Chat");
    CHECK(to_elixir_string(binary("chicken?")) == "\"chicken?\"");
    CHECK(to_elixir_string(tuple({atom("undef"), list({})})) == "{:undef, []}");
    CHECK(to_erlang_string(tuple({atom("EXIT"), Term{int64_t{1}}})) == "{'EXIT', 1}");
    CHECK(to_erlang_string(atom("_atom")) == "'_atom'");
    CHECK(to_elixir_string(atom("_atom")) == ":_atom");
  }
}

TEST_SUITE("term") {
  TEST_CASE("a rendering stops at its limit, whatever the term's size") {
    std::vector<Term> many(200'000, Term{int64_t{7}});
    const std::string shown = to_erlang_string(tuple({atom("big"), list(std::move(many))}), 100);
    CHECK(shown.size() == 103);
    CHECK(shown.rfind("{big, [7, 7, ", 0) == 0);
    CHECK(shown.substr(100) == "...");
    CHECK(to_elixir_string(binary(std::string(1U << 20U, 'x')), 10) == "\"xxxxxxxxx...");
    CHECK(to_erlang_string(atom("ok"), 2) == "ok");
    CHECK(to_erlang_string(atom("okay"), 2) == "ok...");
    CHECK(to_erlang_string(tuple({atom("ok")}), 3) == "{ok...");
  }

  TEST_CASE("term::show renders in a log line as to_erlang_string does, and only when formatted") {
    const Term t = tuple({atom("EXIT"), Term{int64_t{1}}});
    CHECK(fmt::format("{}", chat::term::show(t)) == to_erlang_string(t));
    const std::string long_one = fmt::format("{}", chat::term::show(binary(std::string(100'000, 'y'))));
    CHECK(long_one.size() == chat::term::kShowChars + 3);
  }
}

TEST_SUITE("term") {
  TEST_CASE("a ChunkList keeps large binaries by reference and patches lengths across them") {
    const Term big = binary(std::string(Binary::kSharedMin + 10, 'b'));
    const Term msg = tuple({atom("x"), big, Term{int64_t{7}}});
    ChunkList list;
    list.text().append(4, '\0');
    encode_to(msg, list);
    const uint32_t len = static_cast<uint32_t>(list.size() - 4);
    const char head[4] = {static_cast<char>(len >> 24), static_cast<char>(len >> 16), static_cast<char>(len >> 8),
                          static_cast<char>(len)};
    list.patch(0, {head, 4});
    ChunkList moved(std::move(list));
    CHECK(list.empty());
    ChunkList all;
    all.text().append("abc");
    all.splice(std::move(moved));
    const size_t total = all.size();
    std::string flat;
    size_t shared = 0;
    for (const auto& c : all.take()) {
      flat += c.bytes();
      shared += c.shared ? 1 : 0;
    }
    CHECK(all.empty());
    CHECK(shared == 1);
    CHECK(flat.size() == total);
    std::string expected = "abc";
    expected.append(head, 4);
    encode_to(msg, expected);
    CHECK(flat == expected);
  }

  TEST_CASE("a ChunkList hands out its front in slices, splitting a chunk without copying it") {
    const std::string big(300, 'b');
    ChunkList list;
    list.text().append("0123456789");
    list.add(SharedBytes(big));
    list.text().append("xyz");
    const auto flat = [](const std::vector<Chunk>& chunks) {
      std::string out;
      for (const auto& c : chunks) out += c.bytes();
      return out;
    };
    const auto first = list.take_front(100);  // the block, and the head of the shared chunk
    CHECK(flat(first) == "0123456789" + big.substr(0, 90));
    CHECK(list.size() == 213);
    const auto second = list.take_front(210);
    CHECK(flat(second) == big.substr(90, 210));
    CHECK(second.front().bytes().data() == first.back().bytes().data() + 90);  // both halves share the bytes
    CHECK(list.size() == 3);
    list.text().append("!");  // the last block still takes bytes
    CHECK(flat(list.take_front(100)) == "xyz!");
    CHECK(list.empty());

    std::string used;
    used.reserve(4096);
    const char* const kept = used.data();
    list.reuse(std::move(used));
    CHECK(list.text().data() == kept);  // the next block is the one handed back
  }

  TEST_CASE("in a burst, a block after a full one is taken whole and never grows by copying") {
    ChunkList list;
    const std::string frame(1000, 'f');
    while (list.size() < (64U << 10U)) list.text().append(frame);
    const size_t first = list.size();
    const char* const second = list.text().data();  // a new block
    CHECK(list.text().capacity() >= (128U << 10U));
    while (list.size() - first < (64U << 10U)) {
      CHECK(list.text().data() == second);  // filled where it was first put
      list.text().append(frame);
    }
    const auto chunks = list.take();
    REQUIRE(chunks.size() == 2);
    CHECK(chunks[1].block.data() == second);
  }
}
