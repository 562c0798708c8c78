// A one_for_one supervisor of registered services, as an Elixir application supervises its
// children (Supervisor defaults: every child permanent, at most 3 restarts in 5 seconds). A
// child that exits for any reason — killed, crashed, or taken down by an exit signal through a
// link — is started again with a new pid under the same registered name, with a log line.
// Past the intensity the supervisor gives up and exits, as a BEAM supervisor does; whoever
// watches it (App, as an application master would) then stops the node.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chat/node/process.hpp"

namespace chat::kernel {

struct ChildSpec {
  std::string name;  // the registered name, also the child's id in logs
  std::function<std::unique_ptr<node::Process>()> start;
};

struct SupervisorStats {
  uint64_t restarts = 0;
};

class Supervisor final : public node::Process {
 public:
  Supervisor(std::string name, std::vector<ChildSpec> children, SupervisorStats& stats, uint32_t intensity = 3,
             uint64_t period_ms = 5000)
      : name_(std::move(name)), children_(std::move(children)), stats_(stats), intensity_(intensity),
        period_ms_(period_ms) {
    trap_exit_ = true;
  }
  void started() override;
  void receive(term::Term&& msg) override;

 private:
  void start_child(size_t i);

  std::string name_;
  std::vector<ChildSpec> children_;
  std::vector<term::Pid> pids_;
  SupervisorStats& stats_;
  uint32_t intensity_;
  uint64_t period_ms_;
  std::deque<uint64_t> restarts_ms_;
};

}  // namespace chat::kernel
