// The shapes of gen_server calls on the wire: {'$gen_call', {From, Tag}, Request} in, and
// {Tag, Reply} sent back to From. On OTP 24+ Tag is [alias | Ref]; it is echoed unchanged.
#pragma once

#include <optional>

#include "chat/node/node.hpp"
#include "chat/term/term.hpp"

namespace chat::kernel {

struct GenCall {
  term::Pid from;
  term::Term tag;
  term::Term request;
};

std::optional<GenCall> parse_gen_call(const term::Term& msg);
// The same, taking the parts out of `msg` rather than copying them; `msg` is left unchanged
// when it is not a call.
std::optional<GenCall> parse_gen_call(term::Term&& msg);
// {'$gen_cast', Msg}: Msg.
const term::Term* parse_gen_cast(const term::Term& msg);
void gen_reply(node::Node& node, const term::Pid& self, const GenCall& call, term::Term reply);
void gen_reply(node::Node& node, const term::Pid& self, GenCall&& call, term::Term reply);
// {'$gen_call', {Self, Tag}, Request}
term::Term gen_call_message(const term::Pid& self, const term::Term& tag, term::Term request);

}  // namespace chat::kernel
