// How long the event loop's turns take. A turn is one iteration of the loop minus the time it
// spent waiting in poll: timers, every input handled, the writes flushed. While one turn runs,
// every other peer's input waits, so the longest turns are the node's stalls, seen from the
// inside (a probe from outside cannot tell a node's stall from its own wait for a CPU).
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>

namespace chat::net {

struct TurnStats {
  // Upper bounds of the buckets, in microseconds; one more bucket holds the longer turns.
  static constexpr std::array<uint64_t, 12> kBoundsUs{100,   250,    500,    1'000,   2'500,   5'000,
                                                      10'000, 25'000, 50'000, 100'000, 250'000, 1'000'000};
  std::array<uint64_t, kBoundsUs.size() + 1> counts{};
  uint64_t turns = 0;
  uint64_t busy_ns = 0;
  uint64_t longest_ns = 0;

  void record(uint64_t ns) {
    size_t i = 0;
    while (i < kBoundsUs.size() && ns > kBoundsUs[i] * 1000) ++i;
    ++counts[i];
    ++turns;
    busy_ns += ns;
    if (ns > longest_ns) longest_ns = ns;
  }

  // Turns that took longer than `us` (one of kBoundsUs).
  [[nodiscard]] uint64_t longer_than_us(uint64_t us) const {
    uint64_t n = 0;
    for (size_t i = 0; i < kBoundsUs.size(); ++i) {
      if (kBoundsUs[i] >= us) {
        for (size_t j = i + 1; j < counts.size(); ++j) n += counts[j];
        return n;
      }
    }
    return n;
  }
};

// A turn runs from the first callback the loop makes after its poll (input, a timer, an
// accept, a result from another thread) to the next per-iteration hook, which also times
// itself: the poll's waiting is left out. libuv's idle-time metrics would tell the same, but
// they make every sleep cost a second epoll_wait (a non-blocking one first): one of the six
// system calls a sparse GenServer.call from a BEAM cost the node. So each callback the loop
// makes calls io_began() first; one that does not only has its time left out of the stats.
struct TurnClock {
  static thread_local inline uint64_t io_start_ns = 0;  // 0: no callback yet this turn
  static void io_began() {
    if (io_start_ns == 0) io_start_ns = uv_hrtime();
  }
};

}  // namespace chat::net
