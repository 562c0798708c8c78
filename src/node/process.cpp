#include "chat/node/process.hpp"

#include <memory>

#include "chat/node/node.hpp"

namespace chat::node {

void Process::send(const term::Pid& to, term::Term msg) { node_->send(self_, to, std::move(msg)); }
void Process::send_named(const std::string& name, const std::string& node_name, term::Term&& msg) {
  node_->send_named(self_, name, node_name, std::move(msg));
}
void Process::send_named(const std::string& name, const std::string& node_name, const term::Term& msg) {
  node_->send_named(self_, name, node_name, msg);
}
void Process::link(const term::Pid& other) { node_->link(self_, other); }
void Process::unlink(const term::Pid& other) { node_->unlink(self_, other); }
term::Ref Process::monitor(const term::Term& target) { return node_->monitor(self_, target); }
void Process::demonitor(const term::Ref& ref) { node_->demonitor(self_, ref); }
void Process::monitor_node(const std::string& node_name) { node_->monitor_node(self_, node_name); }
void Process::demonitor_node(const std::string& node_name) { node_->demonitor_node(self_, node_name); }
void Process::exit(term::Term reason) { node_->exit(self_, std::move(reason)); }

uint64_t Process::after(uint64_t ms, std::function<void()> fire) {
  // The id is known only once the timer exists; the callback reads it from here.
  auto id_cell = std::make_shared<uint64_t>(0);
  const auto id = node_->start_timer(self_, ms, [this, id_cell, fire = std::move(fire)] {
    timers_.erase(*id_cell);
    fire();
  });
  *id_cell = id;
  timers_.insert(id);
  return id;
}

void Process::cancel_timer(uint64_t id) {
  if (timers_.erase(id) != 0) node_->cancel_timer(self_, id);
}

}  // namespace chat::node
