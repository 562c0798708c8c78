// Whether the loop polls on after a turn instead of sleeping, from what the turn did and from
// how long that has recently been followed by more input. Polling on answers a peer that is
// about to write without the wake-up of a sleeping thread (tens of µs on a busy machine), but
// each µs of it is a µs of CPU: it pays only where input is due at once.
//
// gen:call (and so GenServer.call, Task.Supervisor.async, :erpc) begins with a monitor on the
// server. After a turn, the node waits for one of three things:
//  - a peer's request, when the peer's monitor came without it;
//  - a peer's answer, when a local process has just monitored a peer's (its call began);
//  - a peer's next call, when every call begun on us has been answered.
// Each has its own record of recent waits, measured to the input that ended them: the loop
// polls on only where most of them (kHitShare) were short (kWorthNs), for about twice the
// short ones' mean. A peer whose answers come now at once and now a quarter of a millisecond
// later (a BEAM client may send a call's monitor and its request apart) costs the loop more
// polling than the wake-ups saved. A turn with none of these (plain messages, demonitors,
// ticks) leaves the decision as it was.
//
// How much of this the loop may do is the operator's choice (--busy-wait), as the BEAM's
// +sbwt is for its schedulers: each µs polled buys latency with CPU, and a dyno billed by its
// CPU, or sharing it, may want none of it.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

namespace chat::net {

class SpinPolicy {
 public:
  static constexpr uint64_t kMaxNs = 200'000;    // the longest polling on
  static constexpr uint64_t kWorthNs = 150'000;  // the longest wait worth polling for
  // kLong: through pauses a few tenths of a millisecond long, as a BEAM's schedulers poll.
  static constexpr uint64_t kLongMaxNs = 600'000;
  static constexpr uint64_t kLongWorthNs = 450'000;
  // A request follows its monitor within a few µs when the peer's process sends them together
  // (3.5 µs on average, back to back); one that comes tens of µs later waited on the peer's
  // scheduling, which polling does not shorten. Polling through such a wait cost its length in
  // CPU and bought no latency on the bench machine (a CPU idle for only tens of µs wakes fast):
  // with 50 µs here, `:count` calls 1 and 5 ms apart cost 1.15× the CPU of this bound's.
  static constexpr uint64_t kWorthRequestNs = 15'000;
  static constexpr uint32_t kHitShare = 224;     // of 256: the share of short waits needed
  static constexpr uint64_t kSlackNs = 25'000;   // polled beyond twice the recent wait

  enum class Wait { kNone, kRequest, kAnswer, kNextCall };
  // kNone: never poll (a wake-up for every input, the least CPU). kMedium: the policy above.
  // kLong: the same, for waits up to kLongWorthNs.
  enum class BusyWait { kNone, kMedium, kLong };

  explicit SpinPolicy(BusyWait busy_wait = BusyWait::kMedium) : busy_wait_(busy_wait) {}

  void input(uint64_t now_ns) {
    if (first_input_ns_ == 0) first_input_ns_ = now_ns;
  }
  void call_begun(bool by_peer) { ++(by_peer ? begun_by_peer_ : begun_here_); }
  void answered() { ++answers_; }

  // At the end of a turn: whether to replace the polling deadline, and with how long from now
  // (0: sleep now).
  struct Decision {
    bool change = false;
    uint64_t poll_ns = 0;
  };
  Decision after_turn(uint64_t now_ns) {
    if (ends_wait()) learn(first_input_ns_ != 0 ? first_input_ns_ : now_ns);
    Wait next = Wait::kNone;
    if (begun_here_ > 0) {
      next = Wait::kAnswer;
    } else if (begun_by_peer_ > answers_) {
      next = Wait::kRequest;
    } else if (answers_ > 0) {
      next = Wait::kNextCall;
    }
    first_input_ns_ = 0;
    begun_by_peer_ = begun_here_ = answers_ = 0;
    if (next == Wait::kNone) return {};
    wait_ = next;
    wait_start_ns_ = now_ns;
    return {true, poll_for(next)};
  }

  // The recent short waits' mean and the share (of 256) of recent waits that were short.
  struct Record {
    uint64_t short_ns = kWorthNs / 2;
    uint32_t short_share = 256;
  };
  [[nodiscard]] const Record& record(Wait w) const { return records_[static_cast<size_t>(w)]; }

 private:
  // The input that ends a wait: the request is answered, and the peer's answer or next call
  // comes with a monitor or gets one of ours (a demonitor alone does not end it).
  [[nodiscard]] bool ends_wait() const {
    switch (wait_) {
      case Wait::kRequest:
        return answers_ > 0;
      case Wait::kAnswer:
      case Wait::kNextCall:
        return begun_by_peer_ > 0 || answers_ > 0;
      case Wait::kNone:
        break;
    }
    return false;
  }

  void learn(uint64_t arrived_ns) {
    auto& r = records_[static_cast<size_t>(wait_)];
    const uint64_t waited = arrived_ns - std::min(arrived_ns, wait_start_ns_);
    const bool short_wait = waited <= (wait_ == Wait::kRequest ? kWorthRequestNs : worth_ns());
    r.short_share = (r.short_share * 7 + (short_wait ? 256 : 0)) / 8;
    if (short_wait) r.short_ns = (r.short_ns * 7 + waited) / 8;
    wait_ = Wait::kNone;
  }

  [[nodiscard]] uint64_t poll_for(Wait w) const {
    const Record& r = record(w);
    if (busy_wait_ == BusyWait::kNone || r.short_share < kHitShare) return 0;
    return std::min(2 * r.short_ns + kSlackNs, max_ns());
  }
  [[nodiscard]] uint64_t max_ns() const { return busy_wait_ == BusyWait::kLong ? kLongMaxNs : kMaxNs; }
  [[nodiscard]] uint64_t worth_ns() const { return busy_wait_ == BusyWait::kLong ? kLongWorthNs : kWorthNs; }

  BusyWait busy_wait_;

  uint64_t first_input_ns_ = 0;
  uint32_t begun_by_peer_ = 0;
  uint32_t begun_here_ = 0;
  uint32_t answers_ = 0;
  Wait wait_ = Wait::kNone;
  uint64_t wait_start_ns_ = 0;
  // Until learned: poll for requests and answers, not for a next call.
  std::array<Record, 4> records_{Record{}, Record{kWorthRequestNs / 2, 256}, Record{}, Record{kWorthNs / 2, 0}};
};

}  // namespace chat::net
