// Processes written as straight-line code, the way OTP's own processes are: a C++20 coroutine
// with a selective receive. global's locker and registrar block on gen_server calls to other
// nodes in the middle of their algorithms (global.erl); written as coroutines, their C++ reads
// like the Erlang it must match, instead of a state machine spread over callbacks.
//
//   Co<T>       a lazily started coroutine that returns T; `co_await` runs it to completion.
//   CoProcess   a node process whose body is `Co<> main()`. Messages that no receive is
//               waiting for stay in its mailbox, in order, as in Erlang.
//
// GCC 12 destroys some temporaries of a co_await expression twice (a prvalue argument of a
// coroutine call, a lambda passed to an awaiter's factory: seen as double frees here). So,
// in coroutine bodies: build every awaitable in a statement of its own, from named objects,
// and co_await the named result:
//     Co<bool> locking = set_lock_on_nodes(id, nodes);    // id, nodes: named objects
//     const bool locked = co_await locking;
#pragma once

#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <utility>

#include "chat/node/process.hpp"
#include "chat/term/term.hpp"

namespace chat::kernel {

template <typename T = void>
class Co;

namespace detail {

struct PromiseBase {
  std::coroutine_handle<> continuation;
  std::suspend_always initial_suspend() noexcept { return {}; }
  struct Final {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto c = h.promise().continuation;
      return c ? c : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  Final final_suspend() noexcept { return {}; }
  // Nothing in a process body throws on peer data; anything else is a bug.
  void unhandled_exception() noexcept { std::terminate(); }
};

template <typename Promise>
class Handle {
 public:
  Handle() = default;
  explicit Handle(std::coroutine_handle<Promise> h) : h_(h) {}
  Handle(Handle&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset() {
    if (h_) h_.destroy();
    h_ = {};
  }
  std::coroutine_handle<Promise> get() const { return h_; }

 private:
  std::coroutine_handle<Promise> h_;
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Co {
 public:
  struct promise_type : detail::PromiseBase {
    std::optional<T> value;
    Co get_return_object() { return Co(std::coroutine_handle<promise_type>::from_promise(*this)); }
    void return_value(T v) { value = std::move(v); }
  };
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    h_.get().promise().continuation = caller;
    return h_.get();
  }
  T await_resume() { return std::move(*h_.get().promise().value); }

 private:
  explicit Co(std::coroutine_handle<promise_type> h) : h_(h) {}
  detail::Handle<promise_type> h_;
};

template <>
class [[nodiscard]] Co<void> {
 public:
  struct promise_type : detail::PromiseBase {
    Co get_return_object() { return Co(std::coroutine_handle<promise_type>::from_promise(*this)); }
    void return_void() {}
  };
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    h_.get().promise().continuation = caller;
    return h_.get();
  }
  void await_resume() {}
  // Runs a top-level coroutine until its first suspension (CoProcess::started).
  void start() { h_.get().resume(); }
  Co() = default;

 private:
  explicit Co(std::coroutine_handle<promise_type> h) : h_(h) {}
  detail::Handle<promise_type> h_;
};

class CoProcess : public node::Process {
 public:
  static constexpr uint64_t kInfinity = UINT64_MAX;
  using Match = std::function<bool(const term::Term&)>;

  // Reply of a gen_server call, or the reason the call exits with (gen:call's: noproc,
  // {nodedown, Node}, timeout, or the callee's exit reason).
  struct CallResult {
    bool ok = false;
    term::Term value;
  };
  struct MultiResult {
    std::vector<std::pair<std::string, term::Term>> replies;  // node, reply
    std::vector<std::string> bad_nodes;
  };

  void started() final;
  void receive(term::Term&& msg) final;
  [[nodiscard]] size_t mailbox_size() const { return mailbox_.size(); }

 protected:
  // The body. When it returns, the process exits normal.
  virtual Co<> main() = 0;

  class Receive {
   public:
    Receive(CoProcess& p, Match m, uint64_t timeout_ms) : p_(p), match_(std::move(m)), timeout_(timeout_ms) {}
    bool await_ready();
    void await_suspend(std::coroutine_handle<> h);
    std::optional<term::Term> await_resume() { return std::move(result_); }

   private:
    friend class CoProcess;
    CoProcess& p_;
    Match match_;
    uint64_t timeout_;
    std::optional<term::Term> result_;
    std::coroutine_handle<> waiting_;
  };
  // receive Pattern -> Msg after Timeout -> nullopt end.
  Receive receive_match(Match m, uint64_t timeout_ms = kInfinity) { return Receive(*this, std::move(m), timeout_ms); }
  // receive after Ms -> ok end: mailbox untouched.
  Receive sleep(uint64_t ms) {
    return Receive(*this, [](const term::Term&) { return false; }, ms);
  }
  // The first message matching, removed from the mailbox, without waiting.
  std::optional<term::Term> take(const Match& m);
  // Removes every message matching (demonitor's flush).
  void flush(const Match& m);

  // gen_server:call/3 from this process: monitors Dest (a pid or {Name, Node}) as gen:call
  // does, so a missing process or node fails at once instead of at the timeout.
  Co<CallResult> call(term::Term dest, term::Term request, uint64_t timeout_ms = kInfinity);
  // gen_server:multi_call(Nodes, Name, Request) with an infinite timeout.
  Co<MultiResult> multi_call(std::vector<std::string> nodes, std::string name, term::Term request);
  // gen_server:cast/2.
  void cast(const std::string& name, const std::string& node_name, term::Term msg);

 private:
  Co<> main_;
  std::deque<term::Term> mailbox_;
  Receive* waiter_ = nullptr;
  uint64_t timer_ = 0;
};

}  // namespace chat::kernel
