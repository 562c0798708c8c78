// :rpc and :erpc into this node. OTP 23+ run both over SPAWN_REQUEST of erpc:execute_call/4
// and erpc:execute_cast/3 (kernel/src/erpc.erl, rpc.erl); what those functions would do on a
// BEAM is done here for the functions of our table.
#include <spdlog/spdlog.h>

#include "chat/term/show.hpp"
#include "chat/kernel/gen.hpp"
#include "chat/chat/services.hpp"

namespace chat::service {

using term::atom;
using term::Pid;
using term::Term;
using term::tuple;

namespace {

struct Mfa {
  std::string module;
  std::string function;
  std::vector<Term> args;
};

// [M, F, A] with atoms and a proper list, as execute_call/execute_cast receive them.
std::optional<Mfa> mfa_of(const Term& m, const Term& f, const Term& a) {
  const auto* mod = m.get<term::Atom>();
  const auto* fun = f.get<term::Atom>();
  const auto* args = a.get<term::List>();
  if (mod == nullptr || fun == nullptr || args == nullptr || !args->tail.empty()) return std::nullopt;
  return Mfa{mod->name, fun->name, args->items};
}

// A worker of rex: runs one old-style rpc call and replies to the caller the way rex does.
class RexCall final : public FunctionProcess {
 public:
  RexCall(ChatContext& ctx, Mfa mfa, std::function<void(Term)> reply)
      : FunctionProcess(ctx), mfa_(std::move(mfa)), reply_(std::move(reply)) {}
  void started() override {
    run_function(*this, mfa_.module, mfa_.function, mfa_.args, [this](const Outcome& o) {
      // rpc:execute_call/3 of OTP 25: errors become {badrpc, {'EXIT', {Reason, Stack}}}.
      if (o.ok()) {
        reply_(o.value);
      } else if (o.kind == Outcome::Kind::kError) {
        reply_(tuple({atom("badrpc"), tuple({atom("EXIT"), tuple({o.value, o.stack})})}));
      } else {
        reply_(tuple({atom("badrpc"), tuple({atom("EXIT"), o.value})}));
      }
      exit(atom("normal"));
    });
  }

 private:
  Mfa mfa_;
  std::function<void(Term)> reply_;
};

}  // namespace

void SpawnedCall::started() {
  if (module_ == "erpc" && function_ == "execute_call" && args_.size() == 4) {
    // erpc:execute_call(Ref, M, F, A) exits with {Ref, return, V}, {Ref, error, R, Stack},
    // {Ref, exit, R} or {Ref, throw, T}; the caller's monitor carries it home.
    const Term ref = args_[0];
    auto mfa = mfa_of(args_[1], args_[2], args_[3]);
    if (!mfa) {
      exit(tuple({ref, atom("error"), atom("badarg"),
                  term::list({tuple({atom("erlang"), atom("apply"), term::list({args_[1], args_[2], args_[3]}), term::nil()})})}));
      return;
    }
    run_function(*this, mfa->module, mfa->function, mfa->args, [this, ref](const Outcome& o) {
      switch (o.kind) {
        case Outcome::Kind::kReturn: exit(tuple({ref, atom("return"), o.value})); break;
        case Outcome::Kind::kError: exit(tuple({ref, atom("error"), o.value, o.stack})); break;
        case Outcome::Kind::kExit: exit(tuple({ref, atom("exit"), o.value})); break;
      }
    });
    return;
  }
  if (module_ == "erpc" && function_ == "execute_cast" && args_.size() == 3) {
    auto mfa = mfa_of(args_[0], args_[1], args_[2]);
    if (!mfa) {
      exit(atom("badarg"));
      return;
    }
    run_function(*this, mfa->module, mfa->function, mfa->args, [this](const Outcome& o) {
      if (o.kind == Outcome::Kind::kError) {
        node().peer_warn("rpc cast crashed: {}", term::show(o.value));
        // execute_cast raises error({exception, {Reason, Stack}}).
        const Term reason = tuple({atom("exception"), tuple({o.value, o.stack})});
        exit(tuple({reason, o.stack}));
      } else {
        exit(o.ok() ? atom("normal") : o.value);
      }
    });
    return;
  }
  // spawn(Node, M, F, A) of anything else: run it if it is in the table; otherwise it fails
  // as an undefined function does.
  run_function(*this, module_, function_, args_, [this](const Outcome& o) {
    if (o.ok()) {
      exit(atom("normal"));
    } else {
      exit(o.kind == Outcome::Kind::kError ? tuple({o.value, o.stack}) : o.value);
    }
  });
}

void Rex::receive(Term&& msg) {
  if (const auto* t = msg.tuple(2)) {
    const auto* from = (*t)[0].get<Pid>();
    if (from != nullptr && (*t)[1].is_atom("features_request")) {
      // rpc's nodes observer asks every new node; erpc support is what it looks for.
      send(*from, tuple({atom("features_reply"), atom(node().name()), term::list({atom("erpc")})}));
      return;
    }
    // {From, {call, M, F, A, GroupLeader}}: the form hidden C nodes use; answered {rex, Reply}.
    if (const auto* c = (*t)[1].tuple(5); from != nullptr && c != nullptr && (*c)[0].is_atom("call")) {
      if (auto mfa = mfa_of((*c)[1], (*c)[2], (*c)[3])) {
        const Pid caller = *from;
        auto worker = std::make_unique<RexCall>(ctx_, std::move(*mfa), [this, caller](Term r) {
          send(caller, tuple({atom("rex"), std::move(r)}));
        });
        if (const auto* gl = (*c)[4].get<Pid>()) worker->set_group_leader(*gl);
        node().spawn(std::move(worker));
      }
      return;
    }
  }
  auto call = parse_gen_call(msg);
  if (!call) return;
  // {call | block_call, M, F, A, GroupLeader}
  const auto* req = call->request.tuple(5);
  if (req == nullptr || !((*req)[0].is_atom("call") || (*req)[0].is_atom("block_call"))) return;
  auto mfa = mfa_of((*req)[1], (*req)[2], (*req)[3]);
  if (!mfa) {
    gen_reply(node(), self(), *call, tuple({atom("badrpc"), tuple({atom("EXIT"), atom("badarg")})}));
    return;
  }
  const GenCall c = *call;
  auto worker = std::make_unique<RexCall>(ctx_, std::move(*mfa),
                                          [this, c](Term r) { gen_reply(node(), self(), c, std::move(r)); });
  if (const auto* gl = (*req)[4].get<Pid>()) worker->set_group_leader(*gl);
  node().spawn(std::move(worker));
}

}  // namespace chat::service
