// The composition root: one event loop, the network, the node and its chat services, wired
// together; signals stop it cleanly. `chat-node run` is this alone; send and ping add a
// client process once the node is registered.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "chat/app/options.hpp"
#include "chat/chat/output.hpp"
#include "chat/chat/services.hpp"
#include "chat/discovery/discovery.hpp"
#include "chat/http/server.hpp"
#include "chat/net/network.hpp"
#include "chat/net/runtime.hpp"
#include "chat/node/node.hpp"

namespace chat::app {

// The live feed of the web page: what this node prints and what its web users send, as
// Server-Sent Events. A page that opens gets the last kHistory events first, so it shows the
// recent conversation, not only what comes after.
class Feed {
 public:
  static constexpr size_t kHistory = 100;
  static constexpr size_t kMaxText = 4096;  // longer texts are cut in the feed (not in the log)
  // What a new stream gets of that history at most: the newest events that fit. The HTTP
  // server drops a stream with more than 64 KB waiting for its client (http::Limits), and
  // 100 long messages would be past that before the page could read any.
  static constexpr size_t kHistoryBytes = 32 * 1024;
  void publish(const std::string& type, const std::string& peer, const std::string& text);
  void add(std::shared_ptr<http::EventStream> s);

 private:
  std::vector<std::shared_ptr<http::EventStream>> streams_;
  std::deque<std::string> history_;
  uint64_t seq_ = 0;
};

// Why connections to peers failed, for the callers that ask right after (the CLI, the web
// form). Peers name nodes at will, so the table forgets: an entry lives kTtlMs, and past
// kMaxEntries the oldest goes. Its owner sweeps it (expire) while it is not empty, so a burst
// of made-up names leaves nothing behind: its small entries, spread over the heap a burst
// grew, would otherwise keep those pages from going back to the system.
class RecentErrors {
 public:
  static constexpr size_t kMaxEntries = 1024;
  static constexpr uint64_t kTtlMs = 10'000;
  void put(const std::string& peer, std::string why, uint64_t now_ms);
  [[nodiscard]] std::string get(const std::string& peer, uint64_t now_ms) const;
  void expire(uint64_t now_ms);
  [[nodiscard]] size_t size() const { return by_peer_.size(); }

 private:
  struct Entry {
    std::string why;
    uint64_t at_ms;
    uint64_t seq;
  };
  std::map<std::string, Entry> by_peer_;
  std::map<uint64_t, std::string> by_age_;  // seq -> peer
  uint64_t seq_ = 0;
};

// The Output as the network sees it: a gate that is shut while stdout is behind.
class OutputGate final : public net::InputGate {
 public:
  explicit OutputGate(service::Output& out) : out_(out) {}
  [[nodiscard]] bool shut() const override { return out_.full(); }
  [[nodiscard]] uint64_t fed() const override { return out_.lines(); }
  void when_open(std::function<void()> resume) override { out_.when_room(std::move(resume)); }

 private:
  service::Output& out_;
};

class App {
 public:
  explicit App(const Options& options);
  App(const App&) = delete;
  App& operator=(const App&) = delete;
  ~App();

  using Client = std::function<void(App&)>;
  // Runs until stop() or a signal; `on_ready` runs once the node is registered with EPMD.
  int run(Client on_ready = {});
  // Ends the run with `code` once the current callback has returned.
  void stop(int code);

  node::Node& node() { return *node_; }
  net::Network& network() { return *network_; }
  net::Runtime& runtime() { return runtime_; }
  const service::ChatContext& chat() const { return ctx_; }
  kernel::Kernel& kernel() { return kernel_; }
  uint64_t uptime_ms() { return runtime_.now_ms() - started_ms_; }
  const discovery::Discovery* discovery() const { return discovery_.get(); }
  uint64_t http_requests() const { return http_ ? http_->requests() : 0; }
  const http::Server* http() const { return http_.get(); }
  Feed& feed() { return feed_; }
  service::Output& out() { return out_; }
  const Options& options() const { return options_; }
  // Why the last connection attempt to `peer` failed, or "".
  std::string connect_error(const std::string& peer) const;

 private:
  void halt();
  void sweep_connect_errors();

  Options options_;
  net::Runtime runtime_;
  service::Output out_;
  // Before node_: the node's processes (a FunctionProcess waiting on io) use it until they go.
  service::ChatContext ctx_;
  std::unique_ptr<net::Network> network_;
  std::unique_ptr<node::Node> node_;
  kernel::Kernel kernel_;
  OutputGate gate_{out_};
  uv_async_t* output_room_ = nullptr;  // the stdout writer wakes the loop through it
  RecentErrors connect_errors_;
  uint64_t connect_errors_sweep_ = 0;  // timer, while connect_errors_ has entries
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<http::Server> metrics_http_;  // --metrics-port
  std::unique_ptr<discovery::Discovery> discovery_;
  uint64_t started_ms_ = 0;
  Feed feed_;
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  uv_timer_t* watchdog_ = nullptr;
  int exit_code_ = 0;
  bool stopping_ = false;
  // Chat lines go to stdout at most once per kLinesEveryMs while they keep coming; the first
  // after a quieter spell goes from its own turn. Each pipe write wakes stdout's reader, which
  // costs the loop 15-25 µs a write on the bench machine: with calls a millisecond apart from
  // a client on other cores, one write per five calls cut the node's CPU a call by 5-11%. A
  // line waits kLinesEveryMs at most for company, twice that when no turn comes (the timer);
  // the exit writes what waits.
  static constexpr uint64_t kLinesEveryMs = 5;
  void after_writes();
  void write_lines();
  void write_lines_later();
  uint64_t lines_written_ms_ = 0;
  uint64_t lines_timer_ = 0;  // armed while lines wait and no turn may come to write them
};

// The web dyno's routes: /health, /status.json and a status page.
http::Server::Handler web_handler(App& app);

int run_send(const Options& options);
int run_ping(const Options& options);
// Chat.broadcast from the command line: MESSAGE to every member of the pg group Chat.
int run_broadcast(const Options& options);
// Throughput: COUNT binaries of SIZE bytes to {Chat, TARGET}, in windows closed by a
// GenServer.call(:count) round trip; prints the rate.
int run_blast(const Options& options);
int run_gen_secret(const Options& options);

}  // namespace chat::app
