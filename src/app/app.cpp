#include "chat/term/show.hpp"
#include "chat/app/app.hpp"
#include "chat/app/web_group.hpp"

#include <sys/resource.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "chat/app/metrics.hpp"
#include "chat/app/tls_setup.hpp"
#include "chat/dist/constants.hpp"

namespace chat::app {

namespace {

// What an application master does for a permanent application: when its top supervisor
// exits (it gave up restarting a service, or was killed), the node stops.
class ApplicationMaster final : public node::Process {
 public:
  ApplicationMaster(App& app, std::vector<std::pair<std::string, term::Pid>> apps) : app_(app), apps_(std::move(apps)) {}
  void started() override {
    for (const auto& [name, sup] : apps_) refs_.emplace_back(monitor(sup), name);
  }
  void receive(term::Term&& msg) override {
    const auto* d = msg.tuple(5);
    if (d == nullptr || !(*d)[0].is_atom("DOWN")) return;
    for (const auto& [ref, name] : refs_) {
      if ((*d)[1] != term::Term{ref}) continue;
      spdlog::error("application {} exited: {}; stopping the node", name, term::show((*d)[4]));
      app_.stop(1);
    }
  }

 private:
  App& app_;
  std::vector<std::pair<std::string, term::Pid>> apps_;
  std::vector<std::pair<term::Ref, std::string>> refs_;
};

// Descriptors are what a flood of connections exhausts first, and the distribution listener,
// peers and EPMD need theirs. Take the most the system allows (the hard limit), and give HTTP
// a share of it (a quarter) so that a full web server never starves the node.
size_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? size_t{1} << 20U : static_cast<size_t>(rl.rlim_cur);
}

}  // namespace

void RecentErrors::put(const std::string& peer, std::string why, uint64_t now_ms) {
  if (auto it = by_peer_.find(peer); it != by_peer_.end()) {
    by_age_.erase(it->second.seq);
    by_peer_.erase(it);
  }
  // The oldest of all goes past the cap.
  if (by_peer_.size() >= kMaxEntries) {
    by_peer_.erase(by_age_.begin()->second);
    by_age_.erase(by_age_.begin());
  }
  expire(now_ms);
  const uint64_t seq = ++seq_;
  by_peer_.emplace(peer, Entry{std::move(why), now_ms, seq});
  by_age_.emplace(seq, peer);
}

void RecentErrors::expire(uint64_t now_ms) {
  while (!by_age_.empty()) {
    auto oldest = by_age_.begin();
    if (now_ms - by_peer_.at(oldest->second).at_ms < kTtlMs) break;
    by_peer_.erase(oldest->second);
    by_age_.erase(oldest);
  }
}

std::string RecentErrors::get(const std::string& peer, uint64_t now_ms) const {
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end() || now_ms - it->second.at_ms >= kTtlMs) return {};
  return it->second.why;
}

App::App(const Options& options)
    : options_(options), out_(stdout, options.stdout_buffer_mb << 20U), ctx_{out_, {}, &kernel_, {}, {}} {
  net::NetworkConfig cfg;
  cfg.name = options_.node_name;
  cfg.cookie = options_.cookie;
  cfg.epmd_port = options_.epmd_port;
  cfg.listen_port = options_.dist_port;
  cfg.net_ticktime_s = options_.net_ticktime;
  // A hidden node (erl -hidden) does not publish itself: its peers see it in
  // nodes(hidden) only, and neither global nor pg hear of it.
  cfg.flags = options_.hidden ? (dist::flag::kOurs & ~dist::flag::kPublished) : dist::flag::kOurs;
  cfg.max_frame = options_.max_frame_mb << 20U;
  cfg.max_queue = options_.max_queue_mb << 20U;
  cfg.tls = dist_tls(options_);
  cfg.max_connect_attempts = options_.max_connect_attempts;
  runtime_.set_busy_wait(options_.busy_wait);
  network_ = std::make_unique<net::Network>(runtime_, cfg);
  node_ = std::make_unique<node::Node>(options_.node_name, *network_, runtime_);
  node_->set_hidden(options_.hidden);
  network_->attach(*node_);
  ctx_.io_waits.limit = static_cast<uint64_t>(options_.max_io_wait_mb) << 20U;
  ctx_.workers = &runtime_;
  network_->on_connect_failed = [this](const std::string& peer, const std::string& why) {
    connect_errors_.put(peer, why, runtime_.now_ms());
    if (connect_errors_sweep_ == 0) sweep_connect_errors();
  };
  // Backpressure from stdout: the connections whose frames print pause while it is behind,
  // and a peer named by the node (Output::hold) too.
  network_->set_gate(&gate_);
  out_.set_holder([this](const std::string& peer) { network_->hold(peer); });
  runtime_.before_poll([this] { node_->drain(); });
  runtime_.after_writes([this] { after_writes(); });
}

void App::after_writes() {
  // After the turn's replies, so that a caller waiting on one need not wait for the reader's
  // wake-up; under a flood, as a block fills too (Output::line).
  if (!out_.pending()) return;
  if (runtime_.now_ms() - lines_written_ms_ >= kLinesEveryMs) {
    write_lines();
  } else {
    write_lines_later();
  }
}

void App::write_lines() {
  out_.flush();
  lines_written_ms_ = runtime_.now_ms();
  if (lines_timer_ != 0) {
    runtime_.cancel(lines_timer_);
    lines_timer_ = 0;
  }
}

void App::write_lines_later() {
  if (lines_timer_ != 0) return;
  // Late enough that traffic a few ms apart writes them from its own turns, without a wake-up.
  const uint64_t due = lines_written_ms_ + 2 * kLinesEveryMs;
  const uint64_t now = runtime_.now_ms();
  lines_timer_ = runtime_.start(due > now ? due - now : 0, [this] {
    lines_timer_ = 0;
    write_lines();
  });
}

App::~App() = default;

void App::sweep_connect_errors() {
  connect_errors_.expire(runtime_.now_ms());
  connect_errors_sweep_ = 0;
  if (connect_errors_.size() > 0 && !stopping_)
    connect_errors_sweep_ = runtime_.start(1000, [this] { sweep_connect_errors(); });
}

std::string App::connect_error(const std::string& peer) const {
  return connect_errors_.get(peer, runtime_.now_ms());
}

int App::run(Client on_ready) {
  started_ms_ = runtime_.now_ms();
  const size_t fds = raise_fd_limit();
  // Heroku kills a web dyno that has not bound $PORT within 60 s: bind before anything
  // that waits on the network (EPMD, peers, DNS).
  if (options_.http_port) {
    http::Limits limits;
    limits.max_connections = std::max<size_t>(std::min(options_.http_max_connections, fds / 4), 8);
    limits.max_per_client = std::min(options_.http_max_per_client, limits.max_connections);
    limits.max_streams = std::max<size_t>(limits.max_connections / 2, 1);
    limits.trust_forwarded_for = options_.http_behind_proxy;
    http_ = std::make_unique<http::Server>(runtime_.loop(), web_handler(*this), limits);
    http_->listen(*options_.http_port);
    spdlog::info("http: listening on port {} ({} connections at most, {} per client, {} event streams{})",
                 *options_.http_port, limits.max_connections, limits.max_per_client, limits.max_streams,
                 options_.web_token.empty() ? "" : "; access token required");
  }
  if (options_.metrics_port) {
    // A scraper's port, never the router's: a few connections, from a few clients.
    http::Limits mlimits;
    mlimits.max_connections = std::max<size_t>(std::min<size_t>(64, fds / 16), 4);
    mlimits.max_per_client = std::min<size_t>(8, mlimits.max_connections);
    mlimits.max_streams = 1;
    metrics_http_ = std::make_unique<http::Server>(runtime_.loop(), metrics_handler(*this), mlimits);
    metrics_http_->listen(*options_.metrics_port);
    spdlog::info("metrics: GET /metrics on port {}", *options_.metrics_port);
  }
  // The stdout writer says "room again" from its own thread; the loop hears it here.
  output_room_ = new uv_async_t;
  output_room_->data = this;
  uv_async_init(runtime_.loop(), output_room_, [](uv_async_t* h) {
    net::TurnClock::io_began();
    static_cast<App*>(h->data)->out_.run_waiters();
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(output_room_));
  out_.set_wake([room = output_room_] { uv_async_send(room); });
  for (auto* sig : {&sigterm_, &sigint_}) {
    uv_signal_init(runtime_.loop(), sig);
    sig->data = this;
  }
  const auto on_signal = [](uv_signal_t* h, int signum) {
    net::TurnClock::io_began();
    spdlog::info("signal {}: stopping", signum);
    static_cast<App*>(h->data)->stop(0);
  };
  uv_signal_start(&sigterm_, on_signal, SIGTERM);
  uv_signal_start(&sigint_, on_signal, SIGINT);

  network_->start(
      [this, on_ready = std::move(on_ready)](uint32_t creation) {
        node_->set_creation(creation);
        const term::Pid kernel_sup = kernel::start_kernel(*node_, kernel_);
        std::vector<kernel::ChildSpec> web;
        if (http_) web.push_back({kWebName, [this] { return std::make_unique<WebInbox>(ctx_); }});
        const term::Pid chat_sup = service::start_services(*node_, ctx_, std::move(web));
        node_->spawn(std::make_unique<ApplicationMaster>(
            *this, std::vector<std::pair<std::string, term::Pid>>{{"kernel", kernel_sup}, {"chat", chat_sup}}));
        spdlog::info("node {} up: distribution port {}, EPMD port {}", node_->name(), network_->listen_port(),
                     options_.epmd_port);
        if (options_.cookie.starts_with('-')) {
          spdlog::warn("the cookie starts with '-': a BEAM given it as `erl -setcookie` or `--cookie` takes it for a "
                       "flag and uses ~/.erlang.cookie instead, so it cannot connect here (chat-node gen-secret "
                       "never makes such a cookie)");
        }
        if (options_.command == Command::kRun) {
          out_.line("Node name: " + node_->name());
          out_.flush();
        }
        // From here on every printed line is a chat message: the web feed shows it.
        if (http_) out_.on_line([this](std::string_view line) { feed_.publish("in", "", std::string(line)); });
        if (on_ready) on_ready(*this);
        if (!options_.discover.empty()) {
          discovery_ = std::make_unique<discovery::Discovery>(runtime_, *network_, options_.discover,
                                                              options_.discovery_interval_s, options_.epmd_port,
                                                              node_->name());
          discovery_->start();
        }
        node_->drain();
      },
      [this](const std::string& why) {
        spdlog::error("{}", why);
        stop(1);
      });
  runtime_.run();
  if (watchdog_ != nullptr) {
    uv_timer_stop(watchdog_);
    net::close_and_delete(watchdog_, watchdog_);
    watchdog_ = nullptr;
  }
  out_.flush();
  return exit_code_;
}

void App::stop(int code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = code;
  // Not from inside whatever callback asked for it: connections may be on the stack.
  runtime_.start(0, [this] { halt(); });
}

void App::halt() {
  if (discovery_) discovery_->stop();
  if (http_) http_->close();
  if (metrics_http_) metrics_http_->close();
  if (output_room_ != nullptr) {
    out_.set_wake(nullptr);  // from here on flush() notices room by itself
    net::close_and_delete(output_room_, output_room_);
    output_room_ = nullptr;
  }
  network_->stop();
  for (auto* sig : {&sigterm_, &sigint_}) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(sig))) uv_close(reinterpret_cast<uv_handle_t*>(sig), nullptr);
  }
  runtime_.shutdown();
  // A peer that stops reading must not keep us from exiting: after a grace period every
  // handle still open is closed without waiting for it. (A stopped stdout is Output's to give
  // up on; the two together keep a SIGTERM under a second.)
  watchdog_ = new uv_timer_t;
  uv_timer_init(runtime_.loop(), watchdog_);
  uv_timer_start(
      watchdog_,
      [](uv_timer_t* t) {
        uv_walk(
            t->loop,
            [](uv_handle_t* h, void* self) {
              if (h != self && !uv_is_closing(h)) uv_close(h, nullptr);
            },
            t);
      },
      500, 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(watchdog_));
}

}  // namespace chat::app
