#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <vector>

#include "chat/dist/framing.hpp"
#include "hex.hpp"

using namespace chat;
using term::atom;
using term::Term;

namespace {

struct Seen {
  int ticks = 0;
  std::vector<std::string> frames;
  bool malformed = false;
};

void drain(dist::FrameReader& r, Seen& seen) {
  std::string_view f;
  for (;;) {
    const auto st = r.next(&f);
    if (st == dist::FrameReader::Status::kNeedMore) return;
    if (st == dist::FrameReader::Status::kMalformed) {
      seen.malformed = true;
      return;
    }
    if (st == dist::FrameReader::Status::kTick) {
      ++seen.ticks;
    } else {
      seen.frames.emplace_back(f);
    }
  }
}

}  // namespace

TEST_SUITE("framing") {
  TEST_CASE("a SEND frame has the documented layout") {
    // <<Len:32, 112, 131, {2, '', To}, 131, Msg>>
    const term::Pid to{"a@b", 1, 0, 7};
    const Term control = term::tuple({Term{int64_t{2}}, atom(""), to});
    const Term msg = term::binary("hi");
    std::string out;
    dist::append_frame(out, control, &msg);
    const std::string body = std::string(1, '\x70') + term::encode(control) + term::encode(msg);
    CHECK(test::hex(out.substr(4)) == test::hex(body));
    CHECK(out.substr(0, 4) == std::string("\0\0\0", 3) + static_cast<char>(body.size()));
    auto parsed = dist::parse_message(body);
    REQUIRE(parsed.has_value());
    CHECK(parsed->control_term() == control);
    REQUIRE(parsed->has_payload());
    CHECK(parsed->take_payload() == msg);
  }

  TEST_CASE("frames and ticks come out the same whatever the read boundaries") {
    std::string stream;
    const Term c1 = term::tuple({Term{int64_t{6}}, term::Pid{"x@y", 3, 0, 1}, atom(""), atom("net_kernel")});
    const Term m1 = term::tuple({atom("$gen_call"), Term{int64_t{1}}});
    dist::append_frame(stream, c1, &m1);
    dist::append_tick(stream);
    const Term c2 = term::tuple({Term{int64_t{1}}, term::Pid{"x@y", 3, 0, 1}, term::Pid{"a@b", 4, 0, 1}});
    dist::append_frame(stream, c2, nullptr);

    for (size_t split = 0; split <= stream.size(); ++split) {
      for (size_t step : {size_t{1}, size_t{3}, stream.size()}) {
        CAPTURE(split);
        CAPTURE(step);
        dist::FrameReader r(1 << 20);
        Seen seen;
        r.feed(std::string_view(stream).substr(0, split));
        drain(r, seen);
        for (size_t i = split; i < stream.size(); i += step) {
          r.feed(std::string_view(stream).substr(i, step));
          drain(r, seen);
        }
        REQUIRE(seen.frames.size() == 2);
        CHECK(seen.ticks == 1);
        CHECK_FALSE(seen.malformed);
        CHECK(dist::parse_message(seen.frames[0])->control_term() == c1);
        CHECK(dist::parse_message(seen.frames[1])->control_term() == c2);
        CHECK_FALSE(dist::parse_message(seen.frames[1])->has_payload());
      }
    }
  }

  TEST_CASE("a frame longer than the limit is malformed before any of it is buffered") {
    dist::FrameReader r(1024);
    Seen seen;
    r.feed(test::unhex("ffffffff"));  // a 4 GB frame header
    drain(r, seen);
    CHECK(seen.malformed);
  }

  TEST_CASE("the rest of a large frame can be read in place, and comes out whole") {
    const Term control = term::tuple({Term{int64_t{6}}, term::Pid{"x@y", 3, 0, 1}, atom(""), atom("Elixir.Chat")});
    const Term big = term::binary(std::string(300000, 'z'));
    std::string stream;
    dist::append_frame(stream, control, &big);
    dist::append_tick(stream);

    dist::FrameReader r(1 << 20);
    Seen seen;
    CHECK(r.direct_area(1).empty());  // no header yet: nothing known to be missing
    r.feed(std::string_view(stream).substr(0, 1000));
    drain(r, seen);
    CHECK(r.direct_area(1 << 20).empty());  // a frame smaller than the caller asks for
    size_t at = 1000;
    const size_t frame_end = stream.size() - 4;
    while (at < frame_end) {
      auto area = r.direct_area(1);
      REQUIRE(area.size() == frame_end - at);  // exactly the rest of this frame, never beyond it
      const size_t n = std::min<size_t>(70000, area.size());
      std::memcpy(area.data(), stream.data() + at, n);
      r.commit(n);
      at += n;
      drain(r, seen);
    }
    CHECK(r.direct_area(1).empty());
    r.feed(std::string_view(stream).substr(frame_end));
    drain(r, seen);
    REQUIRE(seen.frames.size() == 1);
    CHECK(seen.ticks == 1);
    CHECK(*dist::parse_message(seen.frames[0])->payload == big);
    CHECK(r.buffered() == 0);
  }

  TEST_CASE("a lent frame buffer is never written over") {
    const Term control = term::tuple({Term{int64_t{6}}, term::Pid{"x@y", 3, 0, 1}, atom(""), atom("Elixir.Chat")});
    const Term big = term::binary(std::string(term::Binary::kSharedMin, 'L'));
    const Term other = term::binary(std::string(term::Binary::kSharedMin, 'M'));
    std::string one;
    dist::append_frame(one, control, &big);
    std::string next;
    dist::append_frame(next, control, &other);
    const std::string two = one + next;
    dist::FrameReader r(1 << 20);
    r.feed(std::string_view(two).substr(0, one.size() + 10));  // a frame and the start of the next
    std::string_view f;
    REQUIRE(r.next(&f) == dist::FrameReader::Status::kFrame);
    auto msg = dist::parse_message(f, {}, r.lend());
    REQUIRE(msg.has_value());
    const std::string_view kept = msg->payload->get<term::Binary>()->bytes();
    r.feed(std::string_view(two).substr(one.size() + 10));
    REQUIRE(r.next(&f) == dist::FrameReader::Status::kFrame);
    CHECK(f == std::string_view(next).substr(4));
    CHECK(r.next(&f) == dist::FrameReader::Status::kNeedMore);
    r.feed(std::string_view("\0\0\0\0", 4));
    CHECK(r.next(&f) == dist::FrameReader::Status::kTick);
    CHECK(kept == std::string(term::Binary::kSharedMin, 'L'));
  }

  TEST_CASE("a frame can be read as its length, then the rest in place") {
    const Term control = term::tuple({Term{int64_t{2}}, atom(""), term::Pid{"x@y", 3, 0, 1}});
    const Term msg = term::binary("hello");
    std::string frame;
    dist::append_frame(frame, control, &msg);
    dist::FrameReader r(1 << 20);
    auto head = r.header_area();
    REQUIRE(head.size() == 4);
    std::memcpy(head.data(), frame.data(), 3);
    r.commit(3);
    head = r.header_area();
    REQUIRE(head.size() == 1);
    std::memcpy(head.data(), frame.data() + 3, 1);
    r.commit(1);
    CHECK(r.header_area().empty());
    CHECK(r.direct_area(frame.size() + 1).empty());  // smaller than asked for
    auto rest = r.direct_area(0);
    REQUIRE(rest.size() == frame.size() - 4);
    std::memcpy(rest.data(), frame.data() + 4, rest.size());
    r.commit(rest.size());
    std::string_view f;
    REQUIRE(r.next(&f) == dist::FrameReader::Status::kFrame);
    auto m = dist::parse_message(f);
    REQUIRE(m.has_value());
    CHECK(m->take_payload() == msg);
  }

  TEST_CASE("a sink may take a large binary by reference; the frame is the same bytes") {
    // A sink like a socket's write queue: blocks, with shared binaries as chunks of their own.
    struct Chunks final : term::Sink {
      std::deque<term::Chunk> chunks;
      size_t bytes = 0;
      std::string& text() override {
        if (chunks.empty() || chunks.back().shared) chunks.emplace_back();
        return chunks.back().block;
      }
      void add(const term::SharedBytes& b) override { chunks.push_back({{}, b}); }
      [[nodiscard]] size_t size() const override {
        size_t n = 0;
        for (const auto& c : chunks) n += c.bytes().size();
        return n;
      }
      void patch(size_t at, std::string_view b) override {
        for (auto& c : chunks) {
          if (at < c.bytes().size()) {
            c.block.replace(at, b.size(), b);
            return;
          }
          at -= c.bytes().size();
        }
      }
    };
    const Term control = term::tuple({Term{int64_t{6}}, term::Pid{"x@y", 3, 0, 1}, atom(""), atom("Elixir.Chat")});
    const Term payload = term::tuple({term::binary(std::string(term::Binary::kSharedMin, 'R')), atom("after")});
    std::string plain;
    dist::append_frame(plain, control, &payload);
    Chunks sink;
    dist::append_frame(sink, control, &payload);
    REQUIRE(sink.chunks.size() == 3);
    CHECK(sink.chunks[1].bytes().data() == payload.get<term::Tuple>()->items[0].get<term::Binary>()->bytes().data());
    std::string joined;
    for (const auto& c : sink.chunks) joined += c.bytes();
    CHECK(joined == plain);
  }

  TEST_CASE("an oversized length offers no read area") {
    dist::FrameReader r(1024);
    r.feed(test::unhex("00100000"));
    CHECK(r.direct_area(1).empty());
    Seen seen;
    drain(r, seen);
    CHECK(seen.malformed);
  }

  TEST_CASE("garbage frames do not parse") {
    CHECK_FALSE(dist::parse_message("").has_value());
    CHECK_FALSE(dist::parse_message(test::unhex("70")).has_value());
    CHECK_FALSE(dist::parse_message(test::unhex("7183" "6a")).has_value());           // not pass-through
    CHECK_FALSE(dist::parse_message(test::unhex("7083" "6a")).has_value());           // control not a tuple
    CHECK_FALSE(dist::parse_message(test::unhex("7083" "680161" "02" "99")).has_value());  // junk after control
    CHECK_FALSE(dist::parse_message(test::unhex("7083" "680161" "02" "83")).has_value());  // empty payload
    CHECK(dist::parse_message(test::unhex("7083" "680161" "02")).has_value());
  }
}

namespace {

// <<112, 131, {2, '', Pid}, 131, Payload>> with the payload's encoding (no version byte) given.
std::string send_frame(const std::string& payload_ext) {
  const Term control = term::tuple({Term{int64_t{2}}, atom(""), term::Pid{"a@b", 1, 0, 7}});
  return std::string(1, '\x70') + term::encode(control) + std::string(1, '\x83') + payload_ext;
}

// LIST_EXT of n elements, each `element` (encoded), then [].
std::string list_of(size_t n, const std::string& element) {
  std::string out = "l";
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  for (size_t k = 0; k < n; ++k) out += element;
  return out + "j";
}

}  // namespace

TEST_SUITE("framing") {
  TEST_CASE("a frame built to blow up when decoded fails like an oversized one, before any allocation") {
    // One byte per [] on the wire, a whole Term (72 bytes) once decoded: 1M of them would take
    // 72 MB for a 1 MB frame, past its budget (32 MB + 4 x 1 MB).
    const std::string bomb = send_frame(list_of(1U << 20U, "j"));
    bool over = false;
    CHECK_FALSE(dist::parse_message(bomb, {}, nullptr, &over).has_value());
    CHECK(over);
    // The same shape, small enough, decodes.
    const std::string fine = send_frame(list_of(100'000, "j"));
    auto msg = dist::parse_message(fine, {}, nullptr, &over);
    REQUIRE(msg.has_value());
    CHECK_FALSE(over);
    CHECK(msg->payload->get<term::List>()->items.size() == 100'000);
    // Malformed is not over budget.
    CHECK_FALSE(dist::parse_message(send_frame("l\x7f\xff\xff\xffj"), {}, nullptr, &over).has_value());
    CHECK_FALSE(over);
  }

  TEST_CASE("large binaries and ordinary messages are far inside the decoding budget") {
    const Term big = term::binary(std::string(40U << 20U, 'b'));  // more than the floor, in bytes
    std::string out;
    const Term control = term::tuple({Term{int64_t{2}}, atom(""), term::Pid{"a@b", 1, 0, 7}});
    dist::append_frame(out, control, &big);
    bool over = true;
    auto msg = dist::parse_message(std::string_view(out).substr(4), {}, nullptr, &over);
    REQUIRE(msg.has_value());
    CHECK_FALSE(over);
    CHECK(msg->payload->get<term::Binary>()->bytes().size() == (40U << 20U));
    // A charlist of 65535 characters (STRING_EXT, what an Erlang string is sent as).
    std::string chars = "k\xff\xff" + std::string(65535, 'c');
    CHECK(dist::parse_message(send_frame(chars)).has_value());
  }

  TEST_CASE("the budget counts every element, text on the heap and strings, and nothing for large binaries") {
    size_t budget = 1000;
    const std::string three = term::encode(term::list({Term{int64_t{1}}, Term{int64_t{2}}, Term{int64_t{3}}}));
    size_t at = 1;
    REQUIRE(term::decode_at(three, &at, {}, nullptr, &budget).has_value());
    CHECK(budget == 1000 - 5 * sizeof(Term));  // the list, three items and the [] tail
    const std::string long_atom = term::encode(atom(std::string(100, 'a')));
    budget = sizeof(Term) + 100;
    at = 1;
    CHECK_FALSE(term::decode_at(long_atom, &at, {}, nullptr, &budget).has_value());
    CHECK(budget == 0);  // spent: how a refusal for cost is told from a malformed term
    budget = sizeof(Term) + 101;
    at = 1;
    CHECK(term::decode_at(long_atom, &at, {}, nullptr, &budget).has_value());
    const std::string large = term::encode(term::binary(std::string(term::Binary::kSharedMin, 'x')));
    budget = sizeof(Term);
    at = 1;
    CHECK(term::decode_at(large, &at, {}, nullptr, &budget).has_value());
  }
}
