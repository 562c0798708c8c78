// Shared pieces of the libFuzzer targets (one executable per target, see CMakeLists.txt).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace fuzz {

// Identities the captured seed frames use (test/fuzz/capture): the chat node under test and
// the BEAM that talked to it. The capture's fake EPMD hands out these creations, so pids and
// refs in real frames name processes of the node built here.
inline constexpr const char* kNodeName = "fuzz@127.0.0.1";
inline constexpr uint32_t kNodeCreation = 0x0f022001;
inline constexpr const char* kPeerName = "amanda@127.0.0.1";
inline constexpr const char* kCookie = "fuzzcookie";

// Stops the run with a message; libFuzzer reports the abort as a crash and saves the input.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}
#define FUZZ_CHECK(cond)                              \
  do {                                                \
    if (!(cond)) ::fuzz::fail(#cond " (" __FILE__ ")"); \
  } while (0)

// Bytes placed right before a PROT_NONE page. erl_interface (libei.a) is not instrumented, so
// ASan cannot see it read past the end of its buffer; the guard page turns such a read into
// a SIGSEGV that libFuzzer reports.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t capacity) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_pages_ = (capacity + page_ - 1) / page_ + 1;
    auto* base = mmap(nullptr, (data_pages_ + 1) * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) fail("mmap");
    base_ = static_cast<char*>(base);
    if (mprotect(base_ + data_pages_ * page_, page_, PROT_NONE) != 0) fail("mprotect");
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  // A copy of `bytes` ending exactly at the guard page; valid until the next call.
  std::string_view place(std::string_view bytes) {
    if (bytes.size() > data_pages_ * page_) fail("GuardedBuffer too small");
    char* at = base_ + data_pages_ * page_ - bytes.size();
    if (!bytes.empty()) std::memcpy(at, bytes.data(), bytes.size());
    return {at, bytes.size()};
  }

 private:
  char* base_ = nullptr;
  size_t page_ = 0;
  size_t data_pages_ = 0;
};

// Deterministic chunk sizes drawn from one seed byte of the input (xorshift32).
class Chunker {
 public:
  explicit Chunker(uint8_t seed) : state_(0x9e3779b9U ^ (uint32_t{seed} * 0x01000193U)) {}
  // 1..16 bytes most of the time, now and then everything that is left.
  size_t next(size_t left) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    const uint32_t r = state_ % 64;
    const size_t n = r < 4 ? left : 1 + r % 16;
    return n < left ? n : left;
  }

 private:
  uint32_t state_;
};

}  // namespace fuzz
