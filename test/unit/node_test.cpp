#include <doctest/doctest.h>

#include "chat/node/node.hpp"
#include "fakes.hpp"

using namespace chat;
using dist::Op;
using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

namespace {

using test::op;

// A process that records its mailbox.
class Recorder final : public node::Process {
 public:
  explicit Recorder(std::vector<Term>& box, bool trap = false) : box_(box) { trap_exit_ = trap; }
  void receive(Term&& msg) override { box_.push_back(std::move(msg)); }
  using Process::exit;
  using Process::link;
  using Process::monitor;

 private:
  std::vector<Term>& box_;
};

// A Recorder that takes small binaries from peers as bytes, as the chat inbox does.
class LineTaker final : public node::Process {
 public:
  LineTaker(std::vector<Term>& box, int& taken) : box_(box), taken_(taken) {}
  void receive(Term&& msg) override { box_.push_back(std::move(msg)); }
  bool take_binary(std::string_view bytes) override {
    ++taken_;
    box_.push_back(term::binary(std::string(bytes)));
    return true;
  }

 private:
  std::vector<Term>& box_;
  int& taken_;
};

// A REG_SEND frame as a peer sends it, parsed as a connection parses it. The message's views
// point into `frame`.
dist::Message received(std::string& frame, const Pid& from, const std::string& name, const Term& payload) {
  term::Sink sink(frame);
  dist::append_send_frame(sink, dist::SendParts::registered(from, name), payload);
  auto m = dist::parse_message(std::string_view(frame).substr(4));
  REQUIRE(m.has_value());
  return std::move(*m);
}

struct Fixture {
  test::FakeTransport transport;
  test::FakeTimers timers;
  node::Node node{"me@host", transport, timers};
  Pid remote{"peer@host", 40, 0, 9};
  Fixture() {
    node.set_creation(5);
    transport.connected["peer@host"] = dist::flag::kOurs;
  }
};

}  // namespace

TEST_SUITE("node") {
  TEST_CASE("REG_SEND reaches the registered process; unknown names are dropped") {
    Fixture f;
    std::vector<Term> box;
    f.node.spawn(std::make_unique<Recorder>(box), "inbox");
    CHECK(f.node.control("peer@host", tuple({Term{op(Op::kRegSend)}, f.remote, atom(""), atom("inbox")}), term::binary("x")));
    CHECK(f.node.control("peer@host", tuple({Term{op(Op::kRegSend)}, f.remote, atom(""), atom("nobody")}), term::binary("y")));
    f.node.drain();
    REQUIRE(box.size() == 1);
    CHECK(box[0] == term::binary("x"));
  }

  TEST_CASE("a small binary from a peer is taken as bytes when nothing waits before it") {
    Fixture f;
    std::vector<Term> box;
    int taken = 0;
    f.node.spawn(std::make_unique<LineTaker>(box, taken), "inbox");
    std::string f1;
    std::string f2;
    std::string f3;
    // Nothing queued: taken at once, no term made.
    CHECK(f.node.message("peer@host", received(f1, f.remote, "inbox", term::binary("one"))));
    CHECK(taken == 1);
    REQUIRE(box.size() == 1);
    // A message queued before it: it waits its turn in the queue, and comes as a term.
    CHECK(f.node.control("peer@host", tuple({Term{op(Op::kRegSend)}, f.remote, atom(""), atom("inbox")}), atom("two")));
    CHECK(f.node.message("peer@host", received(f2, f.remote, "inbox", term::binary("three"))));
    CHECK(taken == 1);
    f.node.drain();
    // A payload that is not a small binary goes through the queue as before.
    CHECK(f.node.message("peer@host", received(f3, f.remote, "inbox", tuple({atom("four")}))));
    f.node.drain();
    CHECK(taken == 1);
    CHECK(box == std::vector<Term>{term::binary("one"), atom("two"), term::binary("three"), tuple({atom("four")})});
  }

  TEST_CASE("a process that does not take bytes gets a peer's small binary as a term") {
    Fixture f;
    std::vector<Term> box;
    f.node.spawn(std::make_unique<Recorder>(box), "inbox");
    std::string frame;
    CHECK(f.node.message("peer@host", received(frame, f.remote, "inbox", term::binary("x"))));
    f.node.drain();
    CHECK(box == std::vector<Term>{term::binary("x")});
  }

  TEST_CASE("a name registered again after its process died reaches the new process") {
    Fixture f;
    std::vector<Term> first;
    std::vector<Term> second;
    int taken = 0;
    const Pid old = f.node.spawn(std::make_unique<LineTaker>(first, taken), "inbox");
    std::string f1;
    std::string f2;
    std::string f3;
    CHECK(f.node.message("peer@host", received(f1, f.remote, "inbox", term::binary("one"))));
    f.node.exit(old, atom("kill"));
    f.node.drain();
    CHECK(f.node.message("peer@host", received(f2, f.remote, "inbox", term::binary("lost"))));
    f.node.spawn(std::make_unique<LineTaker>(second, taken), "inbox");
    CHECK(f.node.message("peer@host", received(f3, f.remote, "inbox", term::binary("two"))));
    CHECK(first == std::vector<Term>{term::binary("one")});
    CHECK(second == std::vector<Term>{term::binary("two")});
  }

  TEST_CASE("malformed control messages are reported, not acted on") {
    Fixture f;
    CHECK_FALSE(f.node.control("peer@host", atom("x"), std::nullopt));
    CHECK_FALSE(f.node.control("peer@host", tuple({}), std::nullopt));
    CHECK_FALSE(f.node.control("peer@host", tuple({Term{op(Op::kSend)}, atom(""), atom("notapid")}), Term{}));
    CHECK_FALSE(f.node.control("peer@host", tuple({Term{op(Op::kSend)}, atom(""), f.remote}), std::nullopt));
    CHECK_FALSE(f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote}), std::nullopt));
    CHECK_FALSE(f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("x"), atom("notaref")}), std::nullopt));
  }

  TEST_CASE("a remote link carries our exit back; a normal exit dissolves it") {
    Fixture f;
    std::vector<Term> box;
    const Pid p = f.node.spawn(std::make_unique<Recorder>(box));
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, p}), std::nullopt);
    CHECK(f.node.counters().links == 1);
    f.node.exit(p, atom("normal"));
    f.node.drain();
    auto sent = f.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].op() == op(Op::kExit));
    CHECK(sent[0].at(1) == Term{p});
    CHECK(sent[0].at(2) == Term{f.remote});
    CHECK(sent[0].at(3).is_atom("normal"));
    CHECK(f.node.counters().links == 0);
    CHECK(f.node.counters().processes == 0);
  }

  TEST_CASE("linking to a process that is gone answers noproc at once") {
    Fixture f;
    const Pid ghost{"me@host", 999, 0, 5};
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, ghost}), std::nullopt);
    auto sent = f.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].op() == op(Op::kExit));
    CHECK(sent[0].at(3).is_atom("noproc"));
  }

  TEST_CASE("a crash reason from a linked remote process kills a non-trapping process") {
    Fixture f;
    std::vector<Term> box;
    const Pid p = f.node.spawn(std::make_unique<Recorder>(box));
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, p}), std::nullopt);
    f.node.control("peer@host", tuple({Term{op(Op::kExit)}, f.remote, p, atom("boom")}), std::nullopt);
    f.node.drain();
    CHECK_FALSE(f.node.alive(p));
    CHECK(f.transport.take().empty());  // the link was dissolved by the exit itself
  }

  TEST_CASE("UNLINK_ID removes the link and is acknowledged with the same id") {
    Fixture f;
    std::vector<Term> box;
    const Pid p = f.node.spawn(std::make_unique<Recorder>(box));
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, p}), std::nullopt);
    f.node.control("peer@host", tuple({Term{op(Op::kUnlinkId)}, Term{int64_t{77}}, f.remote, p}), std::nullopt);
    auto sent = f.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].op() == op(Op::kUnlinkIdAck));
    CHECK(sent[0].at(1) == Term{int64_t{77}});
    CHECK(sent[0].at(2) == Term{p});
    CHECK(sent[0].at(3) == Term{f.remote});
    CHECK(f.node.counters().links == 0);
  }

  TEST_CASE("remote monitors: by pid and by name, noproc, demonitor, exit") {
    Fixture f;
    std::vector<Term> box;
    const Pid p = f.node.spawn(std::make_unique<Recorder>(box), "svc");
    const term::Ref r1{"peer@host", 9, {1, 2, 3}};
    const term::Ref r2{"peer@host", 9, {4, 5, 6}};
    const term::Ref r3{"peer@host", 9, {7, 8, 9}};
    f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, p, r1}), std::nullopt);
    f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("svc"), r2}), std::nullopt);
    f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("nobody"), r3}), std::nullopt);
    auto sent = f.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].op() == op(Op::kMonitorPExit));
    CHECK(sent[0].at(4).is_atom("noproc"));
    f.node.control("peer@host", tuple({Term{op(Op::kDemonitorP)}, f.remote, p, r1}), std::nullopt);
    f.node.exit(p, atom("bye"));
    sent = f.transport.take();
    REQUIRE(sent.size() == 1);  // only the name monitor is left
    CHECK(sent[0].op() == op(Op::kMonitorPExit));
    CHECK(sent[0].at(1).is_atom("svc"));
    CHECK(sent[0].at(3) == Term{r2});
    CHECK(sent[0].at(4).is_atom("bye"));
    CHECK(f.node.counters().monitors == 0);
    // gen:call's first step, which the loop polls for the request after: a monitor on a
    // process that is not there begins no call.
    CHECK(f.transport.calls_begun_by_peer == 2);
    CHECK(f.transport.calls_begun_here == 0);
  }

  TEST_CASE("losing a peer breaks links (noconnection) and fires monitors") {
    Fixture f;
    std::vector<Term> box;
    std::vector<Term> trapped;
    const Pid a = f.node.spawn(std::make_unique<Recorder>(box));
    const Pid b = f.node.spawn(std::make_unique<Recorder>(trapped, true));
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, a}), std::nullopt);
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, b}), std::nullopt);
    const auto ref = f.node.monitor(b, f.remote);
    f.transport.take();
    f.node.peer_down("peer@host");
    f.node.drain();
    CHECK_FALSE(f.node.alive(a));
    CHECK(f.node.alive(b));
    REQUIRE(trapped.size() == 2);
    CHECK(trapped[0] == tuple({atom("EXIT"), f.remote, atom("noconnection")}));
    CHECK(trapped[1] == tuple({atom("DOWN"), ref, atom("process"), f.remote, atom("noconnection")}));
    CHECK(f.node.counters().links == 0);
    CHECK(f.node.counters().monitors == 0);
  }

  // More than one slice of a departed peer's links and monitors (Node::kTeardownSlice is 2048).
  constexpr uint32_t kMany = 10'000;

  TEST_CASE("a peer that leaves many monitors behind is undone over several loop turns") {
    Fixture f;
    std::vector<Term> box;
    const Pid p = f.node.spawn(std::make_unique<Recorder>(box, true), "svc");
    for (uint32_t i = 0; i < kMany; ++i) {
      const term::Ref r{"peer@host", 9, {i, 1, 2}};
      f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("svc"), r}), std::nullopt);
    }
    const auto ours = f.node.monitor(p, f.remote);
    f.node.control("peer@host", tuple({Term{op(Op::kLink)}, f.remote, p}), std::nullopt);
    f.transport.take();
    CHECK(f.node.counters().monitors == kMany + 1);
    f.node.peer_down("peer@host");
    f.node.drain();
    CHECK(f.node.counters().monitors > 0);  // the rest waits for the next turns of the loop
    int turns = 0;
    while (!f.timers.pending.empty() && turns < 100) {
      f.timers.advance(1);
      ++turns;
    }
    CHECK(turns >= 2);
    CHECK(f.node.counters().monitors == 0);
    CHECK(f.node.counters().links == 0);
    REQUIRE(box.size() == 2);
    CHECK(box[0] == tuple({atom("EXIT"), f.remote, atom("noconnection")}));
    CHECK(box[1] == tuple({atom("DOWN"), ours, atom("process"), f.remote, atom("noconnection")}));
    CHECK(f.transport.take().empty());
  }

  TEST_CASE("while a departed peer is being undone, its monitors and links send nothing") {
    Fixture f;
    std::vector<Term> box;
    const Pid p = f.node.spawn(std::make_unique<Recorder>(box, true), "svc");
    const Pid q = f.node.spawn(std::make_unique<Recorder>(box, true));
    for (uint32_t i = 0; i < kMany; ++i) {
      const term::Ref r{"peer@host", 9, {i, 1, 2}};
      f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("svc"), r}), std::nullopt);
    }
    f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, q, term::Ref{"peer@host", 9, {0, 0, 1}}}),
                   std::nullopt);
    f.node.link(q, f.remote);
    f.transport.take();
    f.node.peer_down("peer@host");
    // Before its exit signal runs, q's link to the departed node is broken already: an
    // unlink sends no UNLINK that would connect to that node again.
    f.node.unlink(q, f.remote);
    f.node.drain();
    REQUIRE_FALSE(f.timers.pending.empty());
    f.node.exit(p, atom("bye"));  // its monitors from the departed node: no MONITOR_P_EXIT
    f.node.exit(q, atom("bye"));
    f.node.drain();
    CHECK(f.transport.take().empty());
    while (!f.timers.pending.empty()) f.timers.advance(1);
    CHECK(f.node.counters().monitors == 0);
    CHECK(f.node.counters().links == 0);
  }

  TEST_CASE("a peer that comes back first finishes undoing its last connection") {
    Fixture f;
    std::vector<Term> box;
    f.node.spawn(std::make_unique<Recorder>(box), "svc");
    for (uint32_t i = 0; i < kMany; ++i) {
      const term::Ref r{"peer@host", 9, {i, 1, 2}};
      f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("svc"), r}), std::nullopt);
    }
    f.node.peer_down("peer@host");
    CHECK(f.node.counters().monitors > 0);
    f.node.peer_up("peer@host");
    CHECK(f.node.counters().monitors == 0);
    // A monitor of the new connection is its own.
    const term::Ref fresh{"peer@host", 9, {1, 1, 2}};
    f.node.control("peer@host", tuple({Term{op(Op::kMonitorP)}, f.remote, atom("svc"), fresh}), std::nullopt);
    while (!f.timers.pending.empty()) f.timers.advance(1);
    CHECK(f.node.counters().monitors == 1);
  }

  TEST_CASE("local links propagate crashes and local monitors deliver DOWN") {
    Fixture f;
    std::vector<Term> box_a;
    std::vector<Term> box_b;
    const Pid a = f.node.spawn(std::make_unique<Recorder>(box_a));
    const Pid b = f.node.spawn(std::make_unique<Recorder>(box_b, true));
    f.node.link(a, b);
    const auto ref = f.node.monitor(b, a);
    f.node.exit(a, atom("crash"));
    f.node.drain();
    REQUIRE(box_b.size() == 2);
    CHECK(box_b[0] == tuple({atom("EXIT"), a, atom("crash")}));
    CHECK(box_b[1] == tuple({atom("DOWN"), ref, atom("process"), a, atom("crash")}));
    CHECK(f.node.counters().links == 0);
    CHECK(f.node.counters().monitors == 0);
  }

  TEST_CASE("pids are not reused while alive and carry the creation") {
    Fixture f;
    std::vector<Term> box;
    const Pid a = f.node.spawn(std::make_unique<Recorder>(box));
    const Pid b = f.node.spawn(std::make_unique<Recorder>(box));
    CHECK(a != b);
    CHECK(a.creation == 5);
    CHECK(a.node == "me@host");
  }

  TEST_CASE("warnings a peer can cause: 20 a second, then the next one written counts the rest") {
    chat::node::WarnBudget b;
    uint64_t written = 0;
    for (int i = 0; i < 50; ++i) {
      if (auto skipped = b.take(1000)) {
        CHECK(*skipped == 0);
        ++written;
      }
    }
    CHECK(written == chat::node::WarnBudget::kPerSecond);
    CHECK(b.left_out() == 30);
    CHECK_FALSE(b.take(1999).has_value());  // the same second
    const auto next = b.take(2000);
    REQUIRE(next.has_value());
    CHECK(*next == 31);
    CHECK(chat::node::WarnBudget::note(31).find("31 similar warnings left out") != std::string::npos);
    CHECK(b.left_out() == 31);
  }
}
