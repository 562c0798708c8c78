// The frame parser's own reading of MONITOR_P and DEMONITOR_P (dist::Monitor), which every
// gen:call from a peer sends: it must say what the general decoder says of the same bytes,
// refuse what it refuses, leave every other form to it, and the node must do with it what it
// does with the control tuple.
#include <doctest/doctest.h>

#include <string>

#include "chat/dist/framing.hpp"
#include "chat/node/node.hpp"
#include "fakes.hpp"
#include "hex.hpp"

using namespace chat;
using term::atom;
using term::Term;
using test::bytes;

namespace {

const term::Pid kWatcher{"client@127.0.0.1", 90, 0, 0x61a2b3c4};  // past the short-string buffer
const term::Pid kTarget{"t@h", 9, 0, 1};
const term::Ref kRef{"client@127.0.0.1", 0x61a2b3c4, {1, 2, 3}};

Term op(dist::Op o) { return Term{static_cast<int64_t>(o)}; }

std::string pass_through(const Term& control) { return "\x70" + term::encode(control); }

// MONITOR_P {19, Watcher, 'Elixir.Chat', Ref} in the header form, every atom from the cache:
// 'client@127.0.0.1' set at index 1 and 'Elixir.Chat' at index 2 of segment 0.
std::string cached_monitor() {
  std::string f = bytes({131, 68, 2, 0x88, 0x00, 1, 16});
  f += "client@127.0.0.1";
  f += bytes({2, 11});
  f += "Elixir.Chat";
  f += bytes({104, 4, 97, 19, 88, 82, 0, 0, 0, 0, 90, 0, 0, 0, 0, 0x61, 0xa2, 0xb3, 0xc4, 82, 1});
  f += bytes({90, 0, 3, 82, 0, 0x61, 0xa2, 0xb3, 0xc4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3});
  return f;
}

}  // namespace

TEST_SUITE("framing") {
  TEST_CASE("monitors are read without a control tuple and say what the tuple says") {
    for (const auto o : {dist::Op::kMonitorP, dist::Op::kDemonitorP}) {
      for (const Term& target : {Term{kTarget}, atom("Elixir.Chat")}) {
        const Term control = term::tuple({op(o), kWatcher, target, kRef});
        CAPTURE(term::to_erlang_string(control));
        const std::string frame = pass_through(control);  // a Monitor's views point into it
        auto m = dist::parse_message(frame);
        REQUIRE(m.has_value());
        REQUIRE(m->monitor.has_value());
        CHECK_FALSE(m->send.has_value());
        CHECK(m->control.is_nil());
        CHECK(m->control_term() == control);
        CHECK(m->is(o));
        CHECK_FALSE(m->is(dist::Op::kLink));
        CHECK_FALSE(m->has_payload());
        CHECK(m->monitor->from.pid() == kWatcher);
        CHECK(m->monitor->ref.ref() == kRef);
        auto general = dist::parse_message(frame, {}, nullptr, nullptr, nullptr, false);
        REQUIRE(general.has_value());
        CHECK_FALSE(general->monitor.has_value());
        CHECK(general->control == control);
        CHECK(general->is(o));
      }
    }
  }

  TEST_CASE("a monitor naming cached atoms reads them from the header") {
    dist::AtomCache cache;
    const std::string frame = cached_monitor();
    auto m = dist::parse_message(frame, {}, nullptr, nullptr, &cache);
    REQUIRE(m.has_value());
    REQUIRE(m->monitor.has_value());
    CHECK(m->control_term() == term::tuple({op(dist::Op::kMonitorP), kWatcher, atom("Elixir.Chat"), kRef}));
    dist::AtomCache again;
    auto general = dist::parse_message(frame, {}, nullptr, nullptr, &again, false);
    REQUIRE(general.has_value());
    CHECK(general->control == m->control_term());
  }

  TEST_CASE("other forms of a monitor go the general way") {
    const std::vector<Term> controls = {
        // A reference of five words, the most a node makes: still read by hand.
        term::tuple({op(dist::Op::kMonitorP), kWatcher, kTarget, Term{term::Ref{"a@b", 1, {1, 2, 3, 4, 5}}}}),
        // Arity other than the op's; a target that is neither pid nor atom (refused by the node).
        term::tuple({op(dist::Op::kMonitorP), kWatcher, kTarget, kRef, atom("x")}),
        term::tuple({op(dist::Op::kDemonitorP), kWatcher, term::tuple({atom("n"), atom("a@b")}), kRef}),
        term::tuple({op(dist::Op::kDemonitorP), atom("x"), kTarget, kRef}),
        term::tuple({op(dist::Op::kMonitorP), kWatcher, kTarget, Term{int64_t{7}}}),
    };
    for (const auto& c : controls) {
      CAPTURE(term::to_erlang_string(c));
      const std::string frame = pass_through(c);
      auto m = dist::parse_message(frame);
      REQUIRE(m.has_value());
      CHECK(m->monitor.has_value() == (c == controls[0]));  // five words are still read by hand
      CHECK(m->control_term() == c);
    }
    // NEW_REFERENCE_EXT (114), as old peers write it: the general decoder reads it.
    std::string f = bytes({112, 131, 104, 4, 97, 20, 88, 119, 3, 'a', '@', 'b', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3});
    f += bytes({119, 1, 'n', 114, 0, 1, 119, 3, 'a', '@', 'b', 3, 0, 0, 0, 9});
    auto m = dist::parse_message(f);
    REQUIRE(m.has_value());
    CHECK_FALSE(m->monitor.has_value());
    CHECK(m->is(dist::Op::kDemonitorP));
    // Six words: refused either way.
    std::string six = bytes({112, 131, 104, 4, 97, 20, 88, 119, 3, 'a', '@', 'b', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3});
    six += bytes({119, 1, 'n', 90, 0, 6, 119, 3, 'a', '@', 'b', 0, 0, 0, 3});
    six += std::string(24, '\1');
    CHECK_FALSE(dist::parse_message(six).has_value());
    CHECK_FALSE(dist::parse_message(six, {}, nullptr, nullptr, nullptr, false).has_value());
  }

  TEST_CASE("a malformed monitor is refused, whatever part of it is wrong") {
    const std::string whole = pass_through(term::tuple({op(dist::Op::kMonitorP), kWatcher, atom("Elixir.Chat"), kRef}));
    for (size_t n = 0; n < whole.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(dist::parse_message(whole.substr(0, n)).has_value());
    }
    CHECK_FALSE(dist::parse_message(whole + "x").has_value());
    // A reference of no words; a NUL in the reference's node name; a name that is not UTF-8.
    std::string empty_ref = whole;
    const size_t ref_at = empty_ref.rfind(static_cast<char>(90));
    empty_ref[ref_at + 2] = 0;
    CHECK_FALSE(dist::parse_message(empty_ref).has_value());
    std::string nul = whole;
    nul[nul.rfind("client") + 2] = '\0';
    CHECK_FALSE(dist::parse_message(nul).has_value());
    std::string bad = whole;
    bad[bad.find("Elixir") + 1] = static_cast<char>(0xc0);
    CHECK_FALSE(dist::parse_message(bad).has_value());
  }
}

TEST_SUITE("node") {
  TEST_CASE("a monitor read by hand does what its control tuple does") {
    const std::string peer = "client@127.0.0.1";
    const term::Pid watcher{peer, 90, 0, 3};
    const term::Ref ref{peer, 3, {7, 8, 9}};
    for (const bool by_hand : {true, false}) {
      CAPTURE(by_hand);
      test::FakeTransport transport;
      test::FakeTimers timers;
      transport.connected[peer] = dist::flag::kOurs;
      node::Node n("me@127.0.0.1", transport, timers);
      n.peer_up(peer);
      auto parse = [&](const Term& c) {
        const std::string frame = pass_through(c);
        auto m = dist::parse_message(frame, {}, nullptr, nullptr, nullptr, by_hand);
        REQUIRE(m.has_value());
        CHECK(m->monitor.has_value() == by_hand);
        return n.message(peer, std::move(*m));
      };
      // A name nobody holds: MONITOR_P_EXIT noproc at once, naming the target as asked.
      CHECK(parse(term::tuple({op(dist::Op::kMonitorP), watcher, atom("nobody"), ref})));
      n.drain();
      auto sent = transport.take();
      REQUIRE(sent.size() == 1);
      CHECK(sent[0].control ==
            term::tuple({op(dist::Op::kMonitorPExit), atom("nobody"), watcher, ref, atom("noproc")}));
      // A watcher on another node than the peer's: malformed.
      const term::Pid stranger{"x@h", 1, 0, 1};
      CHECK_FALSE(parse(term::tuple({op(dist::Op::kMonitorP), stranger, atom("nobody"), ref})));
      // A demonitor of nothing is no error.
      CHECK(parse(term::tuple({op(dist::Op::kDemonitorP), watcher, atom("nobody"), ref})));
    }
  }
}
