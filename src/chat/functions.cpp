#include "chat/chat/functions.hpp"

#include <unistd.h>

#include "chat/chat/services.hpp"
#include "chat/dist/constants.hpp"

namespace chat::service {

using term::atom;
using term::Term;
using term::tuple;

namespace {

Term stack_of(const std::string& module, const std::string& function, const std::vector<Term>& args) {
  return term::list({tuple({atom(module), atom(function), term::list(args), term::nil()})});
}

Outcome error(const std::string& module, const std::string& function, const std::vector<Term>& args,
              const char* reason) {
  return Outcome{Outcome::Kind::kError, atom(reason), stack_of(module, function, args)};
}

// erlang:nodes/1 kinds a BEAM accepts. A peer is visible when the connection negotiated
// DFLAG_PUBLISHED (we always offer it), hidden otherwise.
std::optional<Term> nodes_of_kind(node::Node& node, const Term& kind) {
  std::vector<Term> out;
  const auto add_peers = [&](bool visible, bool hidden) {
    for (const auto& p : node.peers()) {
      const bool published = (node.transport().flags(p) & dist::flag::kPublished) != 0;
      if ((published && visible) || (!published && hidden)) out.push_back(atom(p));
    }
  };
  auto handle = [&](const Term& k) -> bool {
    if (k.is_atom("visible")) {
      add_peers(true, false);
    } else if (k.is_atom("hidden")) {
      add_peers(false, true);
    } else if (k.is_atom("connected") || k.is_atom("known")) {
      add_peers(true, true);
    } else if (k.is_atom("this")) {
      out.insert(out.begin(), atom(node.name()));
    } else {
      return false;
    }
    return true;
  };
  if (const auto* l = kind.get<term::List>()) {
    for (const auto& k : l->items) {
      if (!handle(k)) return std::nullopt;
    }
  } else if (!handle(kind)) {
    return std::nullopt;
  }
  return term::list(std::move(out));
}

}  // namespace

Term error_exit_reason(const std::string& module, const std::string& function, const std::vector<Term>& args,
                       const Term& reason) {
  return tuple({reason, stack_of(module, function, args)});
}

void run_function(FunctionHost& host, const std::string& module, const std::string& function,
                  const std::vector<Term>& args, std::function<void(Outcome)> done) {
  auto& node = host.host_node();
  const std::string& me = node.name();
  const auto n = args.size();
  const auto ret = [&](Term v) { done(Outcome{Outcome::Kind::kReturn, std::move(v), {}}); };
  const auto fail = [&](const char* reason) { done(error(module, function, args, reason)); };

  if (module == "Elixir.Chat") {
    // Prints the message, then `next` runs; IO.puts of something that is not chardata raises.
    const auto puts_then = [&](const Term& message, std::function<void()> next) {
      auto text = puts_text(message);
      if (!text) {
        done(error("Elixir.IO", "puts", {message}, "badarg"));
        return;
      }
      host.puts(*text, std::move(next));
    };
    // moebi (seed) and receive_message_for_moebi (lesson) answer by calling the sender back;
    // the call's value becomes this function's value, its failure this function's crash.
    const auto call_back = [&host, done](const std::string& target, const std::string& fun, std::vector<Term> cb_args) {
      host.call_remote(target, fun, std::move(cb_args), [done](TaskCall::Outcome o) {
        done(o.ok ? Outcome{Outcome::Kind::kReturn, o.value, {}} : Outcome{Outcome::Kind::kExit, o.value, {}});
      });
    };
    if (function == "receive_message" && n == 2) {
      const auto* from = args[1].get<term::Atom>();
      const bool moebi = ChatContext::is_moebi(me) && from != nullptr;
      const std::string from_name = from != nullptr ? from->name : "";
      puts_then(args[0], [=, &me] {
        if (moebi) {
          call_back(from_name, "receive_message", {term::binary("chicken?"), atom(me)});
        } else {
          done(Outcome{Outcome::Kind::kReturn, atom("nil"), {}});
        }
      });
      return;
    }
    if (function == "receive_message" && n == 1) {
      puts_then(args[0], [done] { done(Outcome{Outcome::Kind::kReturn, atom("ok"), {}}); });
      return;
    }
    if (function == "receive_message_for_moebi" && n == 2) {
      const auto* from = args[1].get<term::Atom>();
      if (from == nullptr) return fail("function_clause");
      const std::string from_name = from->name;
      puts_then(args[0], [=] { call_back(from_name, "receive_message", {term::binary("chicken?")}); });
      return;
    }
    if (function == "send_message" && n == 2) {
      // Chat.send_message/2 run here: this node sends on the caller's behalf (seed variant).
      const auto* to = args[0].get<term::Atom>();
      if (to == nullptr) return fail("function_clause");
      call_back(to->name, "receive_message", {args[1], atom(me)});
      return;
    }
    return fail("undef");
  }

  if ((module == "erlang" && function == "node" && n == 0) || (module == "Elixir.Node" && function == "self" && n == 0)) {
    return ret(atom(me));
  }
  if ((module == "erlang" && function == "nodes" && n == 0) || (module == "Elixir.Node" && function == "list" && n == 0)) {
    return ret(*nodes_of_kind(node, atom("visible")));
  }
  if ((module == "erlang" && function == "nodes" && n == 1) || (module == "Elixir.Node" && function == "list" && n == 1)) {
    auto r = nodes_of_kind(node, args[0]);
    return r ? ret(*r) : fail("badarg");
  }
  if ((module == "erlang" && function == "is_alive" && n == 0) ||
      (module == "Elixir.Node" && function == "alive?" && n == 0)) {
    return ret(atom("true"));
  }
  if (module == "os" && function == "getpid" && n == 0) {
    const std::string pid = std::to_string(::getpid());
    std::vector<Term> chars;
    for (char c : pid) chars.emplace_back(int64_t{c});
    return ret(term::list(std::move(chars)));
  }
  fail("undef");
}

}  // namespace chat::service
