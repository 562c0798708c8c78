#include "chat/kernel/gen.hpp"

namespace chat::kernel {

using term::Term;

namespace {
// {'$gen_call', {Pid, Tag}, Request}
bool parse_gen_call_shape(const Term& msg) {
  const auto* t = msg.tuple(3);
  if (t == nullptr || !(*t)[0].is_atom("$gen_call")) return false;
  const auto* from = (*t)[1].tuple(2);
  return from != nullptr && (*from)[0].get<term::Pid>() != nullptr;
}
}  // namespace

std::optional<GenCall> parse_gen_call(const Term& msg) {
  if (!parse_gen_call_shape(msg)) return std::nullopt;
  const auto& t = msg.get<term::Tuple>()->items;
  const auto& from = t[1].get<term::Tuple>()->items;
  return GenCall{*from[0].get<term::Pid>(), from[1], t[2]};
}

std::optional<GenCall> parse_gen_call(Term&& msg) {
  if (!parse_gen_call_shape(msg)) return std::nullopt;
  auto& t = msg.get<term::Tuple>()->items;
  auto& from = t[1].get<term::Tuple>()->items;
  return GenCall{std::move(*from[0].get<term::Pid>()), std::move(from[1]), std::move(t[2])};
}

const Term* parse_gen_cast(const Term& msg) {
  const auto* t = msg.tuple(2);
  return t != nullptr && (*t)[0].is_atom("$gen_cast") ? &(*t)[1] : nullptr;
}

void gen_reply(node::Node& node, const term::Pid& self, const GenCall& call, Term reply) {
  node.reply(self, call.from, call.tag, std::move(reply));
}

void gen_reply(node::Node& node, const term::Pid& self, GenCall&& call, Term reply) {
  node.reply(self, call.from, std::move(call.tag), std::move(reply));
}

Term gen_call_message(const term::Pid& self, const Term& tag, Term request) {
  return term::tuple({term::atom("$gen_call"), term::tuple({self, tag}), std::move(request)});
}

}  // namespace chat::kernel
