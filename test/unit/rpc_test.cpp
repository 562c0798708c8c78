// SPAWN_REQUEST as OTP's erpc sends it (kernel erpc.erl: spawn_request(N, erpc, execute_call,
// [Ref, M, F, A], [{reply, error_only}, monitor])), aliases, and rex's features probe.
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

struct RpcNode {
  RpcNode() : node("kate@h", transport, timers) {
    node.set_creation(3);
    transport.connected[peer] = dist::flag::kOurs;
    service::start_services(node, ctx);
    node.drain();
    base = node.counters();
  }

  // Returns the messages sent in answer to one spawn request.
  std::vector<test::Sent> spawn(const std::string& m, const std::string& f, std::vector<Term> args, std::vector<Term> opts) {
    const Term control = tuple({Term{op(Op::kSpawnRequest)}, req, caller, gl,
                                tuple({atom(m), atom(f), Term{static_cast<int64_t>(args.size())}}), term::list(std::move(opts))});
    REQUIRE(node.control(peer, control, term::list(std::move(args))));
    node.drain();
    return transport.take();
  }

  // erpc:call(kate, 'Elixir.Chat', receive_message, [Text]): the call prints Text.
  std::vector<test::Sent> receive_message(const Term& text) {
    return spawn("erpc", "execute_call", {res, atom("Elixir.Chat"), atom("receive_message"), term::list({text})},
                 {atom("monitor")});
  }

  // Closed after `out`, which writes what it still holds when it goes.
  test::TempFile sink;
  service::Output out{sink.file};
  service::ChatContext ctx{out, {}, nullptr, {}, {}};
  test::FakeTransport transport;
  test::FakeTimers timers;
  node::Node node;
  std::string peer = "amanda@h";
  Pid caller{"amanda@h", 90, 0, 7};
  Pid gl{"amanda@h", 60, 0, 7};
  Ref req{"amanda@h", 7, {5, 6, 7}};
  Ref res{"amanda@h", 7, {8, 9, 10}};
  node::Counters base;  // the services' own links and monitors
};

}  // namespace

TEST_SUITE("rpc") {
  TEST_CASE("erpc:execute_call: SPAWN_REPLY with the monitor flag, then the result as the DOWN reason") {
    RpcNode n;
    auto sent = n.spawn("erpc", "execute_call", {n.res, atom("erlang"), atom("node"), term::nil()}, {atom("monitor")});
    REQUIRE(sent.size() == 2);
    CHECK(sent[0].op() == op(Op::kSpawnReply));
    CHECK(sent[0].at(1) == Term{n.req});
    CHECK(sent[0].at(2) == Term{n.caller});
    CHECK(sent[0].at(3) == Term{int64_t{2}});  // monitor set up
    const Pid spawned = *sent[0].at(4).get<Pid>();
    CHECK(sent[1].op() == op(Op::kMonitorPExit));
    CHECK(sent[1].at(1) == Term{spawned});
    CHECK(sent[1].at(3) == Term{n.req});
    CHECK(sent[1].at(4) == tuple({n.res, atom("return"), atom("kate@h")}));
  }

  TEST_CASE("an undefined function comes back as {Ref, error, undef, [{M, F, A, []}]}") {
    RpcNode n;
    auto sent = n.spawn("erpc", "execute_call", {n.res, atom("Elixir.Chat"), atom("nope"), term::list({Term{int64_t{1}}})},
                        {atom("monitor")});
    REQUIRE(sent.size() == 2);
    CHECK(sent[1].at(4) == tuple({n.res, atom("error"), atom("undef"),
                                  term::list({tuple({atom("Elixir.Chat"), atom("nope"), term::list({Term{int64_t{1}}}),
                                                     term::nil()})})}));
  }

  TEST_CASE("output of a spawned call goes to the caller's group leader and waits for io_reply") {
    RpcNode n;
    auto sent = n.receive_message(term::binary("hi"));
    REQUIRE(sent.size() == 2);
    CHECK(sent[1].op() == op(Op::kSend));
    CHECK(sent[1].at(2) == Term{n.gl});
    const auto* io = sent[1].payload->tuple(4);
    REQUIRE(io != nullptr);
    CHECK((*io)[0].is_atom("io_request"));
    CHECK((*io)[3] == tuple({atom("put_chars"), atom("unicode"), term::binary("hi\n")}));
    const Pid spawned = *sent[0].at(4).get<Pid>();
    n.node.control(n.peer, tuple({Term{op(Op::kSend)}, atom(""), spawned}), tuple({atom("io_reply"), (*io)[2], atom("ok")}));
    n.node.drain();
    sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].at(4) == tuple({n.res, atom("return"), atom("ok")}));
  }

  TEST_CASE("a line for a busy connection waits in the call until the queue has room") {
    RpcNode n;
    n.transport.busy_peers.insert(n.peer);
    auto sent = n.receive_message(term::binary("hi"));
    REQUIRE(sent.size() == 1);  // the spawn reply; the line waits
    CHECK(n.ctx.io_waits.bytes == 3);
    n.transport.drained(n.peer);
    n.node.drain();
    sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    const auto* io = sent[0].payload->tuple(4);
    REQUIRE(io != nullptr);
    CHECK((*io)[3] == tuple({atom("put_chars"), atom("unicode"), term::binary("hi\n")}));
    CHECK(n.ctx.io_waits.dropped == 0);
  }

  TEST_CASE("a line whose connection stays busy is dropped after 5 s, with the count, and the call goes on") {
    RpcNode n;
    n.transport.busy_peers.insert(n.peer);
    auto sent = n.receive_message(term::binary("hi"));
    REQUIRE(sent.size() == 1);
    n.timers.advance(5000);
    n.node.drain();
    sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].at(4) == tuple({n.res, atom("return"), atom("ok")}));
    CHECK(n.ctx.io_waits.dropped == 1);
    CHECK(n.ctx.io_waits.bytes == 0);
    n.transport.drained(n.peer);  // the waiter is gone with the call
    n.node.drain();
    CHECK(n.transport.take().empty());
  }

  TEST_CASE("past --max-io-wait-mb, a line for a busy connection is dropped at once") {
    RpcNode n;
    n.ctx.io_waits.limit = 2;
    n.transport.busy_peers.insert(n.peer);
    auto sent = n.receive_message(term::binary("hi"));
    REQUIRE(sent.size() == 2);  // the spawn reply, then the call's end
    CHECK(sent[1].at(4) == tuple({n.res, atom("return"), atom("ok")}));
    CHECK(n.ctx.io_waits.went_on == 0);
    CHECK(n.ctx.io_waits.dropped == 1);
  }

  TEST_CASE("a large line that would be dropped is not copied") {
    RpcNode n;
    test::FakeWorkers workers;
    n.ctx.workers = &workers;
    n.ctx.io_waits.limit = 1 << 20;
    n.ctx.io_waits.bytes = 900 << 10;  // other calls' lines
    n.transport.busy_peers.insert(n.peer);
    auto sent = n.receive_message(term::binary(std::string(300 << 10, 'z')));
    CHECK(workers.jobs.empty());
    REQUIRE(sent.size() == 2);
    CHECK(sent[1].at(4) == tuple({n.res, atom("return"), atom("ok")}));
    CHECK(n.ctx.io_waits.dropped == 1);
    n.ctx.io_waits.bytes = 0;
  }

  TEST_CASE("a large line is copied by the workers, then goes to the group leader") {
    RpcNode n;
    test::FakeWorkers workers;
    n.ctx.workers = &workers;
    const std::string big(300 << 10, 'x');
    auto sent = n.receive_message(term::binary(big));
    REQUIRE(sent.size() == 1);  // the spawn reply; the line is being copied
    CHECK(workers.jobs.size() == 1);
    CHECK(n.ctx.copying_bytes == big.size());
    workers.run_all();
    n.node.drain();
    sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    const auto* io = sent[0].payload->tuple(4);
    REQUIRE(io != nullptr);
    CHECK((*io)[3] == tuple({atom("put_chars"), atom("unicode"), term::binary(big + "\n")}));
    CHECK(n.ctx.copying_bytes == 0);
  }

  TEST_CASE("a process killed while its line is copied is gone when the copy is done") {
    RpcNode n;
    test::FakeWorkers workers;
    n.ctx.workers = &workers;
    auto sent = n.receive_message(term::binary(std::string(300 << 10, 'y')));
    REQUIRE(sent.size() == 1);
    const Pid spawned = *sent[0].at(4).get<Pid>();
    n.node.control(n.peer, tuple({Term{op(Op::kExit2)}, n.caller, spawned, atom("kill")}), std::nullopt);
    n.node.drain();
    n.transport.take();
    CHECK(n.ctx.copying_bytes == 0);
    workers.run_all();  // the done callback finds the process gone
    n.node.drain();
    CHECK(n.transport.take().empty());
  }

  TEST_CASE("link and monitor options set the reply flags; a plain spawn runs and exits normal") {
    RpcNode n;
    auto sent = n.spawn("erlang", "nodes", {}, {atom("link"), tuple({atom("monitor"), term::nil()})});
    REQUIRE(sent.size() == 3);
    CHECK(sent[0].at(3) == Term{int64_t{3}});
    CHECK(sent[1].op() == op(Op::kExit));
    CHECK(sent[1].at(3).is_atom("normal"));
    CHECK(sent[2].op() == op(Op::kMonitorPExit));
    CHECK(n.node.counters().links == n.base.links);
    CHECK(n.node.counters().monitors == n.base.monitors);
  }

  TEST_CASE("malformed spawn requests are refused") {
    RpcNode n;
    CHECK_FALSE(n.node.control(n.peer, tuple({Term{op(Op::kSpawnRequest)}, n.req, n.caller}), term::nil()));
    CHECK_FALSE(n.node.control(n.peer,
                               tuple({Term{op(Op::kSpawnRequest)}, n.req, n.caller, n.gl,
                                      tuple({atom("m"), atom("f"), Term{int64_t{0}}}), term::nil()}),
                               std::nullopt));
    CHECK_FALSE(n.node.control(n.peer,
                               tuple({Term{op(Op::kSpawnRequest)}, atom("x"), n.caller, n.gl,
                                      tuple({atom("m"), atom("f"), Term{int64_t{0}}}), term::nil()}),
                               term::nil()));
  }

  TEST_CASE("ALIAS_SEND reaches the alias owner until unalias") {
    RpcNode n;
    struct Box final : node::Process {
      std::vector<Term>* seen;
      explicit Box(std::vector<Term>* s) : seen(s) {}
      void receive(Term&& m) override { seen->push_back(std::move(m)); }
    };
    std::vector<Term> seen;
    const Pid owner = n.node.spawn(std::make_unique<Box>(&seen));
    const Ref a = n.node.alias(owner);
    n.node.control(n.peer, tuple({Term{op(Op::kAliasSend)}, n.caller, a}), atom("one"));
    n.node.unalias(a);
    n.node.control(n.peer, tuple({Term{op(Op::kAliasSend)}, n.caller, a}), atom("two"));
    n.node.drain();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].is_atom("one"));
  }

  TEST_CASE("rex answers the features probe with erpc") {
    RpcNode n;
    n.node.control(n.peer, tuple({Term{op(Op::kRegSend)}, n.caller, atom(""), atom("rex")}),
                   tuple({n.caller, atom("features_request")}));
    n.node.drain();
    auto sent = n.transport.take();
    REQUIRE(sent.size() == 1);
    CHECK(*sent[0].payload == tuple({atom("features_reply"), atom("kate@h"), term::list({atom("erpc")})}));
  }
}
