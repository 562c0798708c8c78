#include "chat/net/runtime.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace chat::net {

struct Runtime::Timer {
  uv_timer_t handle{};
  uint64_t id = 0;
  Runtime* runtime = nullptr;
  std::function<void()> fire;
};

Runtime::Runtime() {
  if (const int rc = uv_loop_init(&loop_); rc != 0) {
    throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(rc));
  }
  loop_.data = &batch_;
  uv_prepare_init(&loop_, &prepare_);
  prepare_.data = this;
  uv_prepare_start(&prepare_, &Runtime::on_prepare);
  // The per-iteration hook alone must not keep the loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
  uv_idle_init(&loop_, &spin_);
  spin_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&spin_));
  uv_idle_init(&loop_, &busy_);
  uv_unref(reinterpret_cast<uv_handle_t*>(&busy_));
}

void Runtime::spin_after_turn() {
  const uint64_t now = uv_hrtime();
  const auto d = spin_policy_.after_turn(now);
  if (!d.change) return;
  spin_until_ns_ = now + d.poll_ns;
  if (d.poll_ns == 0 && spinning_) {
    uv_idle_stop(&spin_);
    spinning_ = false;
  }
  if (d.poll_ns == 0 || spinning_ || shut_) return;
  spinning_ = true;
  // An active idle handle makes the next poll return at once instead of sleeping.
  uv_idle_start(&spin_, [](uv_idle_t* h) {
    auto* self = static_cast<Runtime*>(h->data);
    if (uv_hrtime() >= self->spin_until_ns_) {
      uv_idle_stop(h);
      self->spinning_ = false;
    }
  });
}

Runtime::~Runtime() {
  shutdown();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop_) == UV_EBUSY) {
    // Handles whose owners never closed them: close them now so the loop can be released.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
}

std::optional<Runtime::CpuTimes> Runtime::thread_cpu() {
  // A small procfs read: served from the kernel's memory, it does not wait on a disk.
  std::FILE* f = std::fopen("/proc/thread-self/schedstat", "re");
  if (f == nullptr) return std::nullopt;
  unsigned long long run = 0;
  unsigned long long wait = 0;
  const int n = std::fscanf(f, "%llu %llu", &run, &wait);
  std::fclose(f);
  if (n != 2) return std::nullopt;
  return CpuTimes{run, wait};
}

bool Runtime::turn_spent() {
  const uint64_t now = uv_hrtime();
  if (share_turn_ != turn_) {
    share_turn_ = turn_;
    share_start_ns_ = now;
    return false;
  }
  return now - share_start_ns_ >= kTurnShareNs;
}

void Runtime::on_prepare(uv_prepare_t* h) {
  auto* self = static_cast<Runtime*>(h->data);
  ++self->turn_;
  const uint64_t now = uv_hrtime();
  if (self->turn_ > 1) self->turn_stats_.record(self->hook_ns_ + (TurnClock::io_start_ns != 0 ? now - TurnClock::io_start_ns : 0));
  for (auto& fn : std::exchange(self->next_turn_, {})) fn();
  for (auto& fn : self->before_poll_) fn();
  self->batch_.flush();
  for (auto& fn : self->after_writes_) fn();
  self->batch_.flush();  // whatever those resumed and wrote (empty as a rule)
  // Work left for the next turn (input a connection has but did not handle yet) is not a
  // reason to sleep: an active idle handle makes this poll return at once.
  if (self->next_turn_.empty()) {
    uv_idle_stop(&self->busy_);
  } else if (!self->shut_) {
    uv_idle_start(&self->busy_, [](uv_idle_t*) {});
  }
  self->spin_after_turn();
  TurnClock::io_start_ns = 0;
  self->hook_ns_ = uv_hrtime() - now;
}

void Runtime::post(std::function<void()> work, std::function<void()> done) {
  struct Job {
    uv_work_t req{};
    std::function<void()> work;
    std::function<void()> done;
  };
  auto* job = new Job{{}, std::move(work), std::move(done)};
  job->req.data = job;
  const int rc = uv_queue_work(
      &loop_, &job->req,
      // What the work holds is released on its thread, as it was taken there.
      [](uv_work_t* r) { std::exchange(static_cast<Job*>(r->data)->work, nullptr)(); },
      [](uv_work_t* r, int) {
        TurnClock::io_began();
        const std::unique_ptr<Job> own(static_cast<Job*>(r->data));
        own->done();
      });
  if (rc != 0) {
    const std::unique_ptr<Job> own(job);
    own->work();
    own->done();
  }
}

uint64_t Runtime::start(uint64_t ms, std::function<void()> fire) {
  if (shut_) return 0;
  auto* t = new Timer;
  t->id = next_id_++;
  t->runtime = this;
  t->fire = std::move(fire);
  t->handle.data = t;
  uv_timer_init(&loop_, &t->handle);
  uv_timer_start(&t->handle, &Runtime::on_timer, ms, 0);
  timers_.emplace(t->id, t);
  return t->id;
}

void Runtime::on_timer(uv_timer_t* h) {
  TurnClock::io_began();
  auto* timer = static_cast<Timer*>(h->data);
  auto fn = std::move(timer->fire);
  timer->runtime->cancel(timer->id);  // one-shot: release before running
  fn();
}

bool Runtime::restart(uint64_t id, uint64_t ms) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return false;
  uv_timer_start(&it->second->handle, &Runtime::on_timer, ms, 0);
  return true;
}

void Runtime::cancel(uint64_t id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  Timer* t = it->second;
  timers_.erase(it);
  uv_timer_stop(&t->handle);
  close_and_delete(t, &t->handle);
}

void Runtime::run() { uv_run(&loop_, UV_RUN_DEFAULT); }

void Runtime::shutdown() {
  if (shut_) return;
  shut_ = true;
  while (!timers_.empty()) cancel(timers_.begin()->first);
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&prepare_))) {
    // Run the hook one last time so queued output is not lost.
    for (auto& fn : before_poll_) fn();
    batch_.stop();
    for (auto& fn : after_writes_) fn();
    uv_prepare_stop(&prepare_);
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
    uv_idle_stop(&spin_);
    uv_close(reinterpret_cast<uv_handle_t*>(&spin_), nullptr);
    uv_idle_stop(&busy_);
    uv_close(reinterpret_cast<uv_handle_t*>(&busy_), nullptr);
  }
}

}  // namespace chat::net
