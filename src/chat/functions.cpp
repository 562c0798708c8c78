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
      const bool published = node.is_visible(p);
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


// The parts of global's and pg's APIs that read this node's tables (global:whereis_name/1,
// registered_names/0, sync/0, resolve_it/4; pg:get_members/1,2, get_local_members/1,2,
// which_groups/0,1, which_local_groups/0,1).
void run_kernel_function(FunctionHost& host, const std::string& module, const std::string& function,
                         const std::vector<Term>& args, std::function<void(Outcome)> done) {
  auto& node = host.host_node();
  auto* k = host.kernel();
  const auto n = args.size();
  const auto ret = [&](Term v) { done(Outcome{Outcome::Kind::kReturn, std::move(v), {}}); };
  const auto fail = [&](const char* reason) { done(error(module, function, args, reason)); };
  // What global answers later must not reach a process that is gone by then.
  const auto later = [&node, pid = host.host_pid(), done](Term v) {
    if (node.alive(pid)) done(Outcome{Outcome::Kind::kReturn, std::move(v), {}});
  };
  if (module == "global") {
    auto* g = k != nullptr ? k->global_server() : nullptr;
    if (g == nullptr) return fail("noproc");
    if (function == "whereis_name" && n == 1) {
      auto pid = g->whereis(args[0]);
      return ret(pid ? Term{*pid} : atom("undefined"));
    }
    if (function == "registered_names" && n == 0) return ret(term::list(g->registered_names()));
    if (function == "register_name" && n == 2) {
      const auto* pid = args[1].get<term::Pid>();
      if (pid == nullptr) return fail("function_clause");
      g->register_name(args[0], *pid, [later](bool yes) { later(atom(yes ? "yes" : "no")); });
      return;
    }
    if (function == "unregister_name" && n == 1) {
      g->unregister_name(args[0], [later](bool) { later(atom("ok")); });
      return;
    }
    if (function == "sync" && n == 0) {
      g->sync([later] { later(atom("ok")); });
      return;
    }
    if (function == "resolve_it" && n == 4) {
      const auto* p1 = args[2].get<term::Pid>();
      const auto* p2 = args[3].get<term::Pid>();
      if (p1 == nullptr || p2 == nullptr) return fail("function_clause");
      return ret(kernel::resolve_here(node, host.host_pid(), args[0], args[1], *p1, *p2));
    }
    return fail("undef");
  }
  // pg: the default scope; another scope name is a table that does not exist.
  auto* pg = k != nullptr ? k->pg : nullptr;
  const auto scope_ok = [&](size_t i) { return args[i].is_atom("pg") && pg != nullptr; };
  const auto pids = [](const std::vector<term::Pid>& v) { return term::list(std::vector<Term>(v.begin(), v.end())); };
  if ((function == "get_members" || function == "get_local_members") && (n == 1 || n == 2)) {
    const bool local = function == "get_local_members";
    if (n == 2 && !scope_ok(0)) return ret(term::nil());
    if (n == 1 && pg == nullptr) return ret(term::nil());
    return ret(pids(pg->members(args[n - 1], local)));
  }
  if ((function == "which_groups" || function == "which_local_groups") && n <= 1) {
    if ((n == 1 && !scope_ok(0)) || pg == nullptr) return fail("badarg");
    return ret(term::list(pg->groups(function == "which_local_groups")));
  }
  fail("undef");
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
      if (!host.puts(message, std::move(next))) done(error("Elixir.IO", "puts", {message}, "badarg"));
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
      std::string from_name = moebi ? from->name : std::string();
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
    if (function == "broadcast" && n == 1) {
      // Chat.broadcast/1: to every member of the pg group Chat, this node's inbox included.
      auto* k = host.kernel();
      if (k != nullptr && k->pg != nullptr) {
        for (const auto& pid : k->pg->members(chat_group())) node.send(host.host_pid(), pid, args[0]);
      }
      return ret(atom("ok"));
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
  if ((module == "net_kernel" && function == "connect_node" && n == 1) ||
      (module == "Elixir.Node" && function == "connect" && n == 1)) {
    // Node.connect/1 returns true, false, or :ignored when this node is not alive.
    const auto* target = args[0].get<term::Atom>();
    if (target == nullptr) return fail("function_clause");
    host.connect_node(target->name, [done](bool ok) { done(Outcome{Outcome::Kind::kReturn, atom(ok ? "true" : "false"), {}}); });
    return;
  }
  if ((module == "erlang" && function == "disconnect_node" && n == 1) ||
      (module == "Elixir.Node" && function == "disconnect" && n == 1)) {
    const auto* target = args[0].get<term::Atom>();
    if (target == nullptr) return fail("badarg");
    const bool was = node.transport().flags(target->name) != 0;
    node.disconnect(target->name);
    return ret(atom(was ? "true" : "false"));
  }
  if ((module == "erlang" && function == "whereis" && n == 1) ||
      (module == "Elixir.Process" && function == "whereis" && n == 1)) {
    const auto* name = args[0].get<term::Atom>();
    if (name == nullptr) return fail("badarg");
    auto pid = node.whereis(name->name);
    return ret(pid ? Term{*pid} : (module == "erlang" ? atom("undefined") : atom("nil")));
  }
  if ((module == "erlang" && function == "is_alive" && n == 0) ||
      (module == "Elixir.Node" && function == "alive?" && n == 0)) {
    return ret(atom("true"));
  }
  if (module == "global" || module == "pg") {
    run_kernel_function(host, module, function, args, std::move(done));
    return;
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
