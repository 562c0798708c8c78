// The services every visible node runs for the cluster, whatever its applications: what
// OTP's kernel application starts on a BEAM node (net_kernel, global_name_server, the
// default pg scope), under one supervisor. Applications (the chat) find them here.
#pragma once

#include <memory>

#include "chat/kernel/global.hpp"
#include "chat/kernel/pg.hpp"
#include "chat/kernel/supervisor.hpp"
#include "chat/node/node.hpp"

namespace chat::kernel {

struct Kernel {
  std::shared_ptr<GlobalShared> global = std::make_shared<GlobalShared>();
  PgScope* pg = nullptr;  // the default scope 'pg' while it runs
  SupervisorStats stats;
  [[nodiscard]] GlobalServer* global_server() const { return global->server; }
};

// net_kernel's part that peers talk to: {is_auth, Node} (Node.ping/1).
class NetKernel final : public node::Process {
 public:
  void receive(term::Term&& msg) override;
};

// Spawns kernel_sup with net_kernel, global_name_server and pg; returns its pid.
term::Pid start_kernel(node::Node& node, Kernel& kernel);

}  // namespace chat::kernel
