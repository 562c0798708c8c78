// chat-node blast: the sending side of the throughput benchmark. Messages go to the target's
// registered Chat process exactly as `send({Chat, node}, binary)` does; every window ends with
// a GenServer.call(:count). Two windows are in flight, so the target always has work while we
// wait for its answer, and what is queued stays bounded; the answer to the last call is the
// moment the whole burst was processed.
#include <chrono>
#include <cstdio>

#include "chat/app/app.hpp"
#include "chat/kernel/gen.hpp"

namespace chat::app {

using term::atom;
using term::Term;

namespace {

class BlastClient final : public node::Process {
 public:
  explicit BlastClient(App& app) : app_(app), payload_(term::binary(std::string(app.options().blast_size, 'x'))) {
    const auto& o = app.options();
    window_ = o.blast_window != 0 ? o.blast_window : std::max<uint64_t>(1, (4U << 20U) / std::max<size_t>(1, o.blast_size));
  }

  void started() override {
    monitor_node(app_.options().target);
    // The first call also sets up the connection and tells where the target's count starts.
    sync();
  }

  void receive(Term&& msg) override {
    const auto* t = msg.tuple(2);
    if (t == nullptr) return;
    if ((*t)[0].is_atom("nodedown")) {
      std::fprintf(stderr, "chat-node: lost %s: %s\n", app_.options().target.c_str(),
                   app_.connect_error(app_.options().target).c_str());
      app_.stop(2);
      return;
    }
    const auto* count = (*t)[1].get<int64_t>();
    if (count == nullptr || pending_.empty() || (*t)[0] != Term{pending_.front()}) return;
    pending_.erase(pending_.begin());
    if (!started_) {
      started_ = true;
      base_ = *count;
      start_ = std::chrono::steady_clock::now();
      send_window();  // the second window in flight
    }
    if (sent_ >= app_.options().blast_count && pending_.empty()) return finish(*count);
    send_window();
  }

 private:
  void send_window() {
    if (sent_ >= app_.options().blast_count) return;
    const uint64_t n = std::min(window_, app_.options().blast_count - sent_);
    for (uint64_t i = 0; i < n; ++i) send_named("Elixir.Chat", app_.options().target, payload_);
    sent_ += n;
    sync();
  }

  void sync() {
    pending_.push_back(node().make_ref());
    send_named("Elixir.Chat", app_.options().target,
               service::gen_call_message(self(), pending_.back(), atom("count")));
  }

  void finish(int64_t count) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const auto received = static_cast<uint64_t>(count - base_);
    const double rate = static_cast<double>(sent_) / secs;
    std::printf("sent %llu messages of %zu bytes in %.3f s: %.0f msg/s, %.1f MB/s (target counted %llu)\n",
                static_cast<unsigned long long>(sent_), app_.options().blast_size, secs, rate,
                rate * static_cast<double>(app_.options().blast_size) / 1e6, static_cast<unsigned long long>(received));
    std::fflush(stdout);
    app_.stop(received >= sent_ ? 0 : 1);
  }

  App& app_;
  Term payload_;
  uint64_t window_ = 1;
  uint64_t sent_ = 0;
  int64_t base_ = 0;
  bool started_ = false;
  std::vector<term::Ref> pending_;  // tags of the :count calls in flight, oldest first
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

int run_blast(const Options& options) {
  App app(options);
  return app.run([](App& a) { a.node().spawn(std::make_unique<BlastClient>(a)); });
}

}  // namespace chat::app
