#include "chat/term/show.hpp"
#include "chat/kernel/supervisor.hpp"

#include <spdlog/spdlog.h>

#include "chat/node/node.hpp"

namespace chat::kernel {

using term::atom;
using term::Term;

void Supervisor::started() {
  pids_.resize(children_.size());
  for (size_t i = 0; i < children_.size(); ++i) start_child(i);
}

void Supervisor::start_child(size_t i) {
  const auto& spec = children_[i];
  pids_[i] = node().spawn(spec.start(), spec.name);
  link(pids_[i]);
}

void Supervisor::receive(Term&& msg) {
  const auto* e = msg.tuple(3);
  if (e == nullptr || !(*e)[0].is_atom("EXIT")) return;
  const auto* pid = (*e)[1].get<term::Pid>();
  if (pid == nullptr) return;
  size_t i = 0;
  while (i < pids_.size() && pids_[i] != *pid) ++i;
  if (i == pids_.size()) {
    // Not a child: an exit signal from a linked process elsewhere, as a supervisor would
    // take it (it exits too, unless the reason is normal).
    if (!(*e)[2].is_atom("normal")) exit((*e)[2]);
    return;
  }
  // The reason may be a peer's (exit/2 with a term of its choosing): shown cut short.
  const std::string reason = term::to_erlang_string((*e)[2], term::kShowChars);
  const uint64_t now = node().now_ms();
  restarts_ms_.push_back(now);
  while (!restarts_ms_.empty() && now - restarts_ms_.front() > period_ms_) restarts_ms_.pop_front();
  if (restarts_ms_.size() > intensity_) {
    spdlog::error("supervisor {}: child {} exited ({}); more than {} restarts in {} ms, giving up", name_,
                  children_[i].name, reason, intensity_, period_ms_);
    exit(atom("shutdown"));
    return;
  }
  spdlog::warn("supervisor {}: child {} exited ({}); restarting it", name_, children_[i].name, reason);
  ++stats_.restarts;
  start_child(i);
}

}  // namespace chat::kernel
