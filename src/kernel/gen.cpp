#include "chat/kernel/gen.hpp"

namespace chat::kernel {

using term::Term;

std::optional<GenCall> parse_gen_call(const Term& msg) {
  const auto* t = msg.tuple(3);
  if (t == nullptr || !(*t)[0].is_atom("$gen_call")) return std::nullopt;
  const auto* from = (*t)[1].tuple(2);
  if (from == nullptr) return std::nullopt;
  const auto* pid = (*from)[0].get<term::Pid>();
  if (pid == nullptr) return std::nullopt;
  return GenCall{*pid, (*from)[1], (*t)[2]};
}

const Term* parse_gen_cast(const Term& msg) {
  const auto* t = msg.tuple(2);
  return t != nullptr && (*t)[0].is_atom("$gen_cast") ? &(*t)[1] : nullptr;
}

void gen_reply(node::Node& node, const term::Pid& self, const GenCall& call, Term reply) {
  node.reply(self, call.from, call.tag, std::move(reply));
}

Term gen_call_message(const term::Pid& self, const Term& tag, Term request) {
  return term::tuple({term::atom("$gen_call"), term::tuple({self, tag}), std::move(request)});
}

}  // namespace chat::kernel
