#include "chat/kernel/kernel.hpp"

#include "chat/kernel/gen.hpp"

namespace chat::kernel {

using term::atom;
using term::Term;

void NetKernel::receive(Term&& msg) {
  auto call = parse_gen_call(msg);
  if (!call) return;
  // net_adm:ping/1 asks {is_auth, Node}; being connected already proved the cookie.
  if (const auto* r = call->request.tuple(2); r != nullptr && (*r)[0].is_atom("is_auth")) {
    gen_reply(node(), self(), *call, atom("yes"));
  }
}

term::Pid start_kernel(node::Node& node, Kernel& kernel) {
  std::vector<ChildSpec> children{
      {"net_kernel", [] { return std::make_unique<NetKernel>(); }},
      {kGlobalName, [&kernel] { return std::make_unique<GlobalServer>(kernel.global); }},
      {"pg", [&kernel] { return std::make_unique<PgScope>("pg", &kernel.pg); }},
  };
  return node.spawn(std::make_unique<Supervisor>("kernel_sup", std::move(children), kernel.stats));
}

}  // namespace chat::kernel
