// The Task.Supervisor protocol as Elixir 1.14–1.18 speak it (shared/WIRE.md, traced), driven
// message by message against the C++ services with an in-memory transport.
#include <doctest/doctest.h>

#include <cstdio>

#include "chat/chat/services.hpp"
#include "chat/node/node.hpp"
#include "fakes.hpp"

using namespace chat;
using dist::Op;
using term::atom;
using term::Pid;
using term::Ref;
using term::Term;
using term::tuple;

namespace {

using test::op;

struct ChatNode {
  explicit ChatNode(const std::string& name) : node(name, transport, timers) {
    node.set_creation(3);
    transport.connected[caller_node] = dist::flag::kOurs;
    kernel::start_kernel(node, kernel);
    service::start_services(node, ctx);
    node.drain();
    base = node.counters();
  }

  // Caller → node: the start_task gen_call; returns the TaskPid from {Tag, {ok, TaskPid}}.
  Pid start_task(const Term& tag) {
    const Term call = tuple({atom("$gen_call"), tuple({caller, tag}),
                             tuple({atom("start_task"),
                                    term::list({tuple({atom(caller_node), caller, caller}), atom("monitor")}),
                                    atom("temporary"), atom("nil")})});
    REQUIRE(node.control(caller_node, tuple({Term{op(Op::kRegSend)}, caller, atom(""), atom("Elixir.Chat.TaskSupervisor")}),
                         call));
    node.drain();
    auto sent = transport.take();
    // The task watches its owner until it gets its work (Task.Supervised.reply/2)...
    REQUIRE(sent.size() == 2);
    CHECK(sent[0].op() == op(Op::kMonitorP));
    CHECK(sent[0].at(2) == Term{caller});
    CHECK(transport.calls_begun_here > 0);  // the loop polls for the work to come
    // ...and the reply goes to the alias of an [alias | Ref] tag when the peer has aliases.
    const bool aliases = (transport.connected[caller_node] & dist::flag::kAlias) != 0;
    CHECK(sent[1].op() == (aliases ? op(Op::kAliasSend) : op(Op::kSend)));
    const auto* reply = sent[1].payload->tuple(2);
    REQUIRE(reply != nullptr);
    CHECK((*reply)[0] == tag);
    const auto* ok = (*reply)[1].tuple(2);
    REQUIRE(ok != nullptr);
    CHECK((*ok)[0].is_atom("ok"));
    return *(*ok)[1].get<Pid>();
  }

  // Caller → node: LINK, then {Owner, Ref, ReplyTo, Callers, {Chat, Fun, Args}}.
  void run(const Pid& task, const std::string& fun, std::vector<Term> args) {
    node.control(caller_node, tuple({Term{op(Op::kLink)}, caller, task}), std::nullopt);
    node.control(caller_node, tuple({Term{op(Op::kMonitorP)}, caller, task, task_ref}), std::nullopt);
    const Term mfa = tuple({atom("Elixir.Chat"), atom(fun), term::list(std::move(args))});
    node.control(caller_node, tuple({Term{op(Op::kSend)}, atom(""), task}),
                 tuple({caller, task_ref, task_ref, term::list({caller}), mfa}));
    node.drain();
  }

  test::TempFile sink;
  service::Output out{sink.file};
  kernel::Kernel kernel;
  service::ChatContext ctx{out, {}, &kernel, {}, {}};
  test::FakeTransport transport;
  test::FakeTimers timers;
  node::Node node;
  std::string caller_node = "amanda@10.0.0.1";
  Pid caller{"amanda@10.0.0.1", 95, 0, 7};
  Ref task_ref{"amanda@10.0.0.1", 7, {10, 11, 12}};
  Term alias_tag = term::improper_list({atom("alias")}, Ref{"amanda@10.0.0.1", 7, {1, 2, 3}});
  node::Counters base;  // the services' own processes, links and monitors
};

const test::Sent* find_op(const std::vector<test::Sent>& sent, int64_t code) {
  for (const auto& s : sent) {
    if (s.op() == code) return &s;
  }
  return nullptr;
}

}  // namespace

TEST_SUITE("task_supervisor") {
  TEST_CASE("an answer to the alias of the caller's monitor makes its demonitor due; other answers do not") {
    ChatNode n("kate@10.0.0.2");
    const Ref mref = *n.alias_tag.get<term::List>()->tail[0].get<Ref>();
    // A caller that did not monitor the server sends no demonitor.
    n.start_task(n.alias_tag);
    CHECK(n.transport.demonitors_due.empty());
    // gen:call: MONITOR_P on the server, the request tagged [alias | MonitorRef], the answer,
    // then the caller's DEMONITOR_P.
    n.node.control(n.caller_node, tuple({Term{op(Op::kMonitorP)}, n.caller, atom("Elixir.Chat.TaskSupervisor"), mref}),
                   std::nullopt);
    n.start_task(n.alias_tag);
    CHECK(n.transport.demonitors_due == std::vector<std::string>{n.caller_node});
    n.node.control(n.caller_node, tuple({Term{op(Op::kDemonitorP)}, n.caller, atom("Elixir.Chat.TaskSupervisor"), mref}),
                   std::nullopt);
    n.start_task(n.alias_tag);
    CHECK(n.transport.demonitors_due.size() == 1);
  }

  TEST_CASE("seed receive_message/2 on kate: printed, nil returned, link dissolved") {
    for (const bool aliases : {true, false}) {
    CAPTURE(aliases);
    ChatNode n("kate@10.0.0.2");
    if (!aliases) n.transport.connected[n.caller_node] &= ~dist::flag::kAlias;
    const Pid task = n.start_task(n.alias_tag);
    n.run(task, "receive_message", {term::binary("Hello from Amanda!"), atom(n.caller_node)});
    auto sent = n.transport.take();
    REQUIRE(sent.size() == 4);
    CHECK(sent[0].op() == op(Op::kDemonitorP));  // the owner is no longer watched
    // {Ref, nil} to ReplyTo: the alias when the peer has aliases, else the caller's pid...
    if (aliases) {
      CHECK(sent[1].op() == op(Op::kAliasSend));
      CHECK(sent[1].at(2) == Term{n.task_ref});
    } else {
      CHECK(sent[1].op() == op(Op::kSend));
      CHECK(sent[1].at(2) == Term{n.caller});
    }
    CHECK(*sent[1].payload == tuple({n.task_ref, atom("nil")}));
    // ...then the normal exit through the link and the monitor.
    CHECK(sent[2].op() == op(Op::kExit));
    CHECK(sent[2].at(3).is_atom("normal"));
    CHECK(sent[3].op() == op(Op::kMonitorPExit));
    CHECK(n.out.lines() == 1);
    CHECK(n.node.counters().links == n.base.links);
    CHECK(n.node.counters().monitors == n.base.monitors);
    CHECK(n.node.counters().processes == n.base.processes);  // only the services are left
    }
  }

  TEST_CASE("lesson receive_message/1 returns :ok") {
    ChatNode n("kate@10.0.0.2");
    const Pid task = n.start_task(n.alias_tag);
    n.run(task, "receive_message", {term::binary("hi")});
    auto sent = n.transport.take();
    const auto* reply = find_op(sent, op(Op::kAliasSend));
    REQUIRE(reply != nullptr);
    CHECK(*reply->payload == tuple({n.task_ref, atom("ok")}));
  }

  TEST_CASE("an unknown function exits the task with {undef, [{Chat, Fun, Args, []}]} at once") {
    ChatNode n("kate@10.0.0.2");
    const Pid task = n.start_task(n.alias_tag);
    n.run(task, "no_such_fun", {Term{int64_t{1}}});
    auto sent = n.transport.take();
    const auto* exit = find_op(sent, op(Op::kExit));
    REQUIRE(exit != nullptr);
    CHECK(exit->at(3) == tuple({atom("undef"), term::list({tuple({atom("Elixir.Chat"), atom("no_such_fun"),
                                                                  term::list({Term{int64_t{1}}}), term::nil()})})}));
    CHECK(find_op(sent, op(Op::kSend)) == nullptr);  // no reply
  }

  TEST_CASE("a task that never gets its start message exits with timeout after 5 s") {
    ChatNode n("kate@10.0.0.2");
    const Pid task = n.start_task(n.alias_tag);
    n.node.control(n.caller_node, tuple({Term{op(Op::kLink)}, n.caller, task}), std::nullopt);
    n.timers.advance(5000);
    auto sent = n.transport.take();
    const auto* exit = find_op(sent, op(Op::kExit));
    REQUIRE(exit != nullptr);
    CHECK(exit->at(3).is_atom("timeout"));
    CHECK_FALSE(n.node.alive(task));
  }

  TEST_CASE("moebi calls the sender back with chicken? before answering") {
    ChatNode n("moebi@10.0.0.3");
    const Pid task = n.start_task(n.alias_tag);
    n.run(task, "receive_message", {term::binary("Hello from Amanda!"), atom(n.caller_node)});
    auto sent = n.transport.take();
    // The task runs Task.Supervisor.async against the caller's Chat.TaskSupervisor.
    const auto* reg = find_op(sent, op(Op::kRegSend));
    REQUIRE(reg != nullptr);
    CHECK(reg->at(1) == Term{task});
    CHECK(reg->at(3).is_atom("Elixir.Chat.TaskSupervisor"));
    const auto* call = reg->payload->tuple(3);
    REQUIRE(call != nullptr);
    const Term tag = (*(*call)[1].tuple(2))[1];

    // The caller's supervisor starts a task there...
    const Pid remote_task{"amanda@10.0.0.1", 200, 0, 7};
    n.node.control(n.caller_node, tuple({Term{op(Op::kSend)}, atom(""), task}),
                   tuple({tag, tuple({atom("ok"), remote_task})}));
    n.node.drain();
    sent = n.transport.take();
    REQUIRE(sent.size() == 4);
    CHECK(sent[0].op() == op(Op::kDemonitorP));  // the supervisor answered: gen:call's monitor goes
    CHECK(sent[1].op() == op(Op::kLink));
    CHECK(sent[2].op() == op(Op::kMonitorP));
    CHECK(sent[3].op() == op(Op::kSend));
    const auto* start = sent[3].payload->tuple(5);
    REQUIRE(start != nullptr);
    CHECK((*start)[4] == tuple({atom("Elixir.Chat"), atom("receive_message"),
                                term::list({term::binary("chicken?"), atom("moebi@10.0.0.3")})}));
    const Term mon_ref = sent[2].at(3);
    CHECK((*start)[1] == mon_ref);

    // ...whose result (nil) becomes moebi's own result.
    n.node.control(n.caller_node, tuple({Term{op(Op::kSend)}, atom(""), task}), tuple({mon_ref, atom("nil")}));
    n.node.drain();
    sent = n.transport.take();
    const auto* demon = find_op(sent, op(Op::kDemonitorP));
    CHECK(demon != nullptr);
    const auto* reply = find_op(sent, op(Op::kAliasSend));
    REQUIRE(reply != nullptr);
    CHECK(*reply->payload == tuple({n.task_ref, atom("nil")}));
    CHECK_FALSE(n.node.alive(task));
  }

  TEST_CASE("moebi's call-back crashing on the caller crashes moebi's task with the same reason") {
    ChatNode n("moebi@10.0.0.3");
    const Pid task = n.start_task(n.alias_tag);
    n.run(task, "receive_message", {term::binary("x"), atom(n.caller_node)});
    auto sent = n.transport.take();
    const Term tag = (*(*find_op(sent, op(Op::kRegSend))->payload->tuple(3))[1].tuple(2))[1];
    const Pid remote_task{"amanda@10.0.0.1", 201, 0, 7};
    n.node.control(n.caller_node, tuple({Term{op(Op::kSend)}, atom(""), task}), tuple({tag, tuple({atom("ok"), remote_task})}));
    n.node.drain();
    n.transport.take();
    n.node.control(n.caller_node, tuple({Term{op(Op::kExit)}, remote_task, task, atom("boom")}), std::nullopt);
    n.node.drain();
    CHECK_FALSE(n.node.alive(task));
    sent = n.transport.take();
    const auto* exit = find_op(sent, op(Op::kExit));
    REQUIRE(exit != nullptr);
    CHECK(exit->at(2) == Term{n.caller});
    CHECK(exit->at(3).is_atom("boom"));
  }

  TEST_CASE("Node.ping: net_kernel answers is_auth with yes") {
    ChatNode n("kate@10.0.0.2");
    const Term call = tuple({atom("$gen_call"), tuple({n.caller, n.alias_tag}), tuple({atom("is_auth"), atom(n.caller_node)})});
    n.node.control(n.caller_node, tuple({Term{op(Op::kRegSend)}, n.caller, atom(""), atom("net_kernel")}), call);
    n.node.drain();
    auto sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].op() == op(Op::kAliasSend));
    CHECK(*sent[0].payload == tuple({n.alias_tag, atom("yes")}));
  }

  TEST_CASE("the Chat inbox prints binaries and counts them") {
    ChatNode n("kate@10.0.0.2");
    for (int i = 0; i < 3; ++i) {
      n.node.control(n.caller_node, tuple({Term{op(Op::kRegSend)}, n.caller, atom(""), atom("Elixir.Chat")}),
                     term::binary("line"));
    }
    const Term call = tuple({atom("$gen_call"), tuple({n.caller, n.alias_tag}), atom("count")});
    n.node.control(n.caller_node, tuple({Term{op(Op::kRegSend)}, n.caller, atom(""), atom("Elixir.Chat")}), call);
    n.node.drain();
    auto sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(*sent[0].payload == tuple({n.alias_tag, Term{int64_t{3}}}));
    CHECK(n.out.lines() == 3);
  }

  TEST_CASE("IO.puts renderings") {
    CHECK(service::puts_text(term::binary("a")) == "a");
    CHECK(service::puts_text(atom("ok")) == "ok");
    CHECK(service::puts_text(Term{int64_t{12}}) == "12");
    CHECK(service::puts_text(term::list({Term{int64_t{104}}, term::binary("i"), Term{int64_t{0xe9}}})) == "hi\xc3\xa9");
    CHECK_FALSE(service::puts_text(tuple({})).has_value());
  }
}
