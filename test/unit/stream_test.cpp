#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <string>

#include "chat/net/runtime.hpp"
#include "chat/net/stream.hpp"

using chat::net::Runtime;
using chat::net::Stream;
using chat::net::WriteBatch;

namespace {

struct Recorder final : Stream::Events {
  bool connected = false;
  void on_connected(Stream& /*s*/) override { connected = true; }
  void on_data(Stream& /*s*/, std::string_view /*bytes*/) override {}
  void on_closed(Stream& /*s*/, const std::string& /*why*/) override {}
};

// A loop with a batch, as Runtime sets one up (or a Runtime's own), and a plain socket
// listening on loopback for the stream under test to connect to.
struct Fixture {
  uv_loop_t own_loop{};
  uv_loop_t* loop = &own_loop;
  WriteBatch batch;
  Recorder events;
  int listener = -1;
  int peer = -1;
  Stream* stream = nullptr;

  explicit Fixture(uv_loop_t* runtime_loop = nullptr) {
    if (runtime_loop != nullptr) {
      loop = runtime_loop;
    } else {
      uv_loop_init(&own_loop);
      own_loop.data = &batch;
    }
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    stream = Stream::create(loop, &events);
    stream->connect(reinterpret_cast<const sockaddr*>(&addr));
    run_until([&] { return events.connected; });
    peer = ::accept(listener, nullptr, nullptr);
    REQUIRE(peer >= 0);
  }

  ~Fixture() {
    stream->close();
    uv_run(loop, UV_RUN_NOWAIT);
    if (loop == &own_loop) {
      uv_run(loop, UV_RUN_DEFAULT);
      uv_loop_close(loop);
    }
    ::close(peer);
    ::close(listener);
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  template <typename Done>
  void run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      uv_run(loop, UV_RUN_NOWAIT);
      batch.flush();
    }
    REQUIRE(done());
  }

  // What the peer can read without waiting.
  std::string available() {
    std::string got;
    char buf[65536];
    ssize_t n = 0;
    while ((n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT)) > 0) got.append(buf, static_cast<size_t>(n));
    return got;
  }
};

}  // namespace

TEST_SUITE("stream") {
  TEST_CASE("small writes wait for the batch; a burst starts on the wire before its callback ends") {
    Fixture f;
    f.stream->write("hello");
    CHECK(f.available().empty());  // the loop's batch writes it, not write()
    f.batch.flush();
    std::string got;
    f.run_until([&] { return (got += f.available()).size() == 5; });
    CHECK(got == "hello");

    // Still inside one "callback": nothing returns to the loop between these writes.
    const std::string a(600U << 10U, 'a');
    const std::string b(600U << 10U, 'b');
    f.stream->write(a);
    CHECK(f.available().empty());
    f.stream->write(b);  // now over a megabyte queued
    got = f.available();
    CHECK_FALSE(got.empty());

    f.run_until([&] { return (got += f.available()).size() == a.size() + b.size(); });
    CHECK(got == a + b);
    CHECK(f.stream->queued_bytes() == 0);
  }

  TEST_CASE("a turn's replies are on the wire before the after_writes hooks run") {
    // stdout's chat lines go from an after_writes hook: a caller's reply must not wait
    // behind the pipe write that wakes stdout's reader.
    Runtime runtime;
    Fixture f(runtime.loop());
    bool wrote = false;
    std::string seen;
    runtime.before_poll([&] {
      if (!wrote) f.stream->write("reply");
      wrote = true;
    });
    runtime.after_writes([&] {
      if (wrote && seen.empty()) seen = f.available();
    });
    f.run_until([&] { return !seen.empty(); });
    CHECK(seen == "reply");
  }
}
