// The event loop: libuv timers behind node::Timers, and work that must happen once per loop
// iteration before the loop blocks (flushing queued writes and stdout in one go).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "chat/net/spin_policy.hpp"
#include "chat/net/stream.hpp"
#include "chat/net/turn_stats.hpp"
#include "chat/node/ports.hpp"

namespace chat::net {

class Runtime final : public node::Timers, public node::Workers {
 public:
  Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime() override;

  uv_loop_t* loop() { return &loop_; }
  uint64_t now_ms() override { return uv_now(&loop_); }
  uint64_t now_ms() const { return uv_now(&loop_); }
  // The clock itself, not the loop's cached millisecond: for pauses shorter than one.
  static uint64_t now_us() { return uv_hrtime() / 1000; }

  uint64_t start(uint64_t ms, std::function<void()> fire) override;
  void cancel(uint64_t id) override;
  // Starts a pending timer's wait over, `ms` from now, without a new timer; false once it
  // has fired or been cancelled.
  bool restart(uint64_t id, uint64_t ms);
  // In libuv's thread pool.
  void post(std::function<void()> work, std::function<void()> done) override;

  // Called before every poll, in the order added.
  void before_poll(std::function<void()> fn) { before_poll_.push_back(std::move(fn)); }
  // Called before every poll too, once this turn's socket writes are on their way: for output
  // that no peer waits on, so that a reply does not wait behind it (stdout's chat lines).
  void after_writes(std::function<void()> fn) { after_writes_.push_back(std::move(fn)); }
  // Runs fn once, before the next poll: after the callbacks of this turn, and before the loop
  // waits for (or handles) the next input. What yields the loop goes on from here.
  void next_turn(std::function<void()> fn) { next_turn_.push_back(std::move(fn)); }
  // True while work waits for the next turn (from a before_poll function: the loop will not
  // sleep after this turn, it goes on at once).
  [[nodiscard]] bool more_turns() const { return !next_turn_.empty(); }
  // Loop turns so far (one per poll): work bounded per turn is counted against it.
  [[nodiscard]] uint64_t turn() const { return turn_; }
  // Work that can wait for the next turn (a connection's next frames, EPMD's answers, refused
  // attempts) shares one budget per turn, so that one turn of the loop stays near a
  // millisecond however many sources have work: true once that share is spent, timed from the
  // first piece of such work this turn (which therefore always runs). Whoever finds it spent
  // does one step at most and goes on in next_turn().
  [[nodiscard]] bool turn_spent();
  // How long the turns so far took, poll's waiting left out (/status.json, /metrics).
  [[nodiscard]] const TurnStats& turn_stats() const { return turn_stats_; }
  // The calling thread's time on a CPU and runnable but waiting for one, from the kernel's
  // scheduler statistics (/proc/thread-self/schedstat); nothing where the kernel keeps none.
  // Called from the loop, it tells a turn that was long because the loop worked from one
  // that was long because the machine had no core free for it.
  struct CpuTimes {
    uint64_t run_ns = 0;
    uint64_t wait_ns = 0;
  };
  [[nodiscard]] static std::optional<CpuTimes> thread_cpu();

  // What the spin policy (spin_policy.hpp) learns a turn from: network input arrived, a call
  // began between a local process and a peer's (by_peer: the peer's monitor came in), or a
  // message went out to a peer.
  void note_activity() { spin_policy_.input(uv_hrtime()); }
  void call_begun(bool by_peer) { spin_policy_.call_begun(by_peer); }
  void answered() { spin_policy_.answered(); }
  // How much the loop may poll after a turn (--busy-wait); what was learned starts over.
  void set_busy_wait(SpinPolicy::BusyWait busy_wait) { spin_policy_ = SpinPolicy(busy_wait); }

  // Runs until every handle is closed.
  void run();
  // Stops timers and the per-iteration hook so that run() can return once the owners of the
  // remaining handles have closed them.
  void shutdown();

 private:
  struct Timer;
  static void on_prepare(uv_prepare_t* h);
  static void on_timer(uv_timer_t* h);
  void spin_after_turn();

  uv_loop_t loop_{};
  uv_prepare_t prepare_{};
  uv_idle_t spin_{};
  uv_idle_t busy_{};  // active while next_turn() work waits: the poll must not sleep
  SpinPolicy spin_policy_;
  uint64_t spin_until_ns_ = 0;
  bool spinning_ = false;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Timer*> timers_;
  std::vector<std::function<void()>> before_poll_;
  std::vector<std::function<void()>> after_writes_;
  std::vector<std::function<void()>> next_turn_;
  uint64_t turn_ = 0;
  TurnStats turn_stats_;
  static constexpr uint64_t kTurnShareNs = 500'000;
  uint64_t share_turn_ = UINT64_MAX;  // the turn the share's clock is timing
  uint64_t share_start_ns_ = 0;
  uint64_t hook_ns_ = 0;  // the last per-iteration hook's own time (flushes), part of its turn
  WriteBatch batch_;  // flushed after the before_poll hooks
  bool shut_ = false;
};

// Closes a heap-allocated handle and deletes its owner in the close callback, the only safe
// moment to free memory libuv still points at.
template <typename Owner, typename Handle>
void close_and_delete(Owner* owner, Handle* handle) {
  handle->data = owner;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete static_cast<Owner*>(h->data); });
}

}  // namespace chat::net
