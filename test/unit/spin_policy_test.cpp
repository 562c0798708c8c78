#include <doctest/doctest.h>

#include "chat/net/spin_policy.hpp"

using chat::net::SpinPolicy;
using Wait = SpinPolicy::Wait;

namespace {

constexpr uint64_t kUs = 1000;

// One gen:call on the node, as a BEAM client makes it: the monitor, the request `request_us`
// later (0: in the same read), then the next call `next_us` after the answer. Returns the
// decision after the answer.
SpinPolicy::Decision call(SpinPolicy& p, uint64_t& now, uint64_t request_us, uint64_t next_us) {
  p.input(now);
  p.call_begun(true);
  if (request_us != 0) {
    (void)p.after_turn(now += kUs);
    p.input(now += request_us * kUs);
  }
  p.answered();
  const auto d = p.after_turn(now += kUs);
  now += next_us * kUs;
  return d;
}

}  // namespace

TEST_SUITE("spin") {
  TEST_CASE("a monitor from a peer polls for its request; the answer ends the polling") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    p.input(now);
    p.call_begun(true);
    auto d = p.after_turn(now + kUs);
    CHECK(d.change);
    CHECK(d.poll_ns > 0);
    p.input(now + 10 * kUs);
    p.answered();
    d = p.after_turn(now + 12 * kUs);
    CHECK(d.change);
    CHECK(d.poll_ns == 0);  // nothing learned yet about the next call: sleep
  }

  TEST_CASE("back-to-back calls: the loop polls for the next one") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    SpinPolicy::Decision d;
    for (int i = 0; i < 40; ++i) d = call(p, now, 0, 30);
    CHECK(d.change);
    CHECK(d.poll_ns >= 60 * kUs);
    CHECK(d.poll_ns <= SpinPolicy::kMaxNs);
  }

  TEST_CASE("calls a quarter of a millisecond apart: no polling between them") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    SpinPolicy::Decision d;
    for (int i = 0; i < 40; ++i) d = call(p, now, 0, 30);
    for (int i = 0; i < 40; ++i) d = call(p, now, 7, 250);
    CHECK(d.poll_ns == 0);
    // The request still comes 7 µs after its monitor: that wait is polled for.
    p.input(now);
    p.call_begun(true);
    d = p.after_turn(now + kUs);
    CHECK(d.poll_ns >= 7 * kUs);
    CHECK(d.poll_ns < 100 * kUs);
  }

  TEST_CASE("requests that often come late after their monitor are not polled for") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    for (int i = 0; i < 40; ++i) (void)call(p, now, i % 2 == 0 ? 30 : 240, 1000);
    p.input(now);
    p.call_begun(true);
    CHECK(p.after_turn(now + kUs).poll_ns == 0);
    CHECK(p.record(Wait::kRequest).short_share < SpinPolicy::kHitShare);
  }

  TEST_CASE("requests that come tens of µs after their monitor are not polled for") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    for (int i = 0; i < 40; ++i) (void)call(p, now, 30, 1000);
    p.input(now);
    p.call_begun(true);
    CHECK(p.after_turn(now + kUs).poll_ns == 0);
  }

  TEST_CASE("a local process that began a call polls for the answer, even after answering") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    p.input(now);
    p.call_begun(true);
    p.answered();           // {ok, TaskPid} to the caller...
    p.call_begun(false);    // ...and the task now watches its owner, waiting for its work
    const auto d = p.after_turn(now + kUs);
    CHECK(d.change);
    CHECK(d.poll_ns > 0);
  }

  TEST_CASE("plain input leaves the decision as it was") {
    SpinPolicy p;
    p.input(1'000'000);
    CHECK_FALSE(p.after_turn(1'001'000).change);
    CHECK_FALSE(p.after_turn(1'002'000).change);
  }

  TEST_CASE("busy-wait none never polls, whatever it learned") {
    SpinPolicy p(SpinPolicy::BusyWait::kNone);
    uint64_t now = 1'000'000;
    SpinPolicy::Decision d;
    for (int i = 0; i < 40; ++i) d = call(p, now, 0, 30);
    CHECK(d.poll_ns == 0);
    p.input(now);
    p.call_begun(true);
    d = p.after_turn(now + kUs);  // a monitor without its request
    CHECK(d.change);
    CHECK(d.poll_ns == 0);
  }

  TEST_CASE("busy-wait long polls through pauses medium sleeps through") {
    SpinPolicy medium;
    SpinPolicy long_wait(SpinPolicy::BusyWait::kLong);
    uint64_t now_m = 1'000'000;
    uint64_t now_l = 1'000'000;
    SpinPolicy::Decision dm;
    SpinPolicy::Decision dl;
    for (int i = 0; i < 40; ++i) {
      dm = call(medium, now_m, 0, 300);
      dl = call(long_wait, now_l, 0, 300);
    }
    CHECK(dm.poll_ns == 0);
    CHECK(dl.poll_ns >= 300 * kUs);
    CHECK(dl.poll_ns <= SpinPolicy::kLongMaxNs);
  }

  TEST_CASE("a demonitor alone does not end the wait for the next call") {
    SpinPolicy p;
    uint64_t now = 1'000'000;
    for (int i = 0; i < 40; ++i) {
      (void)call(p, now, 0, 0);
      p.input(now += 20 * kUs);  // the demonitor: neither a call nor an answer
      (void)p.after_turn(now + kUs);
      now += 200 * kUs;  // the next call, 220 µs after the answer
    }
    CHECK(p.record(Wait::kNextCall).short_share < SpinPolicy::kHitShare);
  }
}
