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
    CHECK(parsed->control == control);
    REQUIRE(parsed->payload.has_value());
    CHECK(*parsed->payload == msg);
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
        CHECK(dist::parse_message(seen.frames[0])->control == c1);
        CHECK(dist::parse_message(seen.frames[1])->control == c2);
        CHECK_FALSE(dist::parse_message(seen.frames[1])->payload.has_value());
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
    CHECK(*dist::parse_message(f)->payload == msg);
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
