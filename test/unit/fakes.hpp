// In-memory stand-ins for what the net layer gives the node.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "chat/dist/constants.hpp"
#include "chat/node/ports.hpp"

namespace test {

// The number of a control message operation, as it appears in the control tuple.
constexpr int64_t op(chat::dist::Op o) { return static_cast<int64_t>(o); }

struct Sent {
  std::string peer;
  chat::term::Term control;
  std::optional<chat::term::Term> payload;

  [[nodiscard]] int64_t op() const {
    const auto* t = control.get<chat::term::Tuple>();
    return t && !t->items.empty() && t->items[0].get<int64_t>() ? *t->items[0].get<int64_t>() : -1;
  }
  [[nodiscard]] const chat::term::Term& at(size_t i) const { return control.get<chat::term::Tuple>()->items.at(i); }
};

class FakeTransport final : public chat::node::Transport {
 public:
  void send(const std::string& peer, const chat::term::Term& control, const chat::term::Term* payload) override {
    sent.push_back(Sent{peer, control, payload ? std::optional(*payload) : std::nullopt});
  }
  void send(const std::string& peer, const chat::dist::SendParts& send, const chat::term::Term& payload) override {
    sent.push_back(Sent{peer, send.control(), payload});
  }
  [[nodiscard]] uint64_t flags(const std::string& peer) const override {
    auto it = connected.find(peer);
    return it == connected.end() ? 0 : it->second;
  }
  [[nodiscard]] std::vector<std::string> peers() const override {
    std::vector<std::string> out;
    for (const auto& [p, f] : connected) out.push_back(p);
    return out;
  }
  void connect(const std::string& peer) override { connects.push_back(peer); }
  void disconnect(const std::string& peer) override { disconnects.push_back(peer); }
  [[nodiscard]] bool busy(const std::string& peer) const override { return busy_peers.contains(peer); }
  void when_not_busy(const std::string& peer, std::weak_ptr<std::function<void()>> resume) override {
    waiting[peer].push_back(std::move(resume));
  }
  void call_begun(bool by_peer) override { ++(by_peer ? calls_begun_by_peer : calls_begun_here); }
  void demonitor_due(const std::string& peer) override { demonitors_due.push_back(peer); }
  // The queue for `peer` drained: its waiters go on.
  void drained(const std::string& peer) {
    busy_peers.erase(peer);
    for (auto& w : std::exchange(waiting[peer], {})) {
      if (auto f = w.lock()) (*f)();
    }
  }
  std::vector<Sent> take() { return std::exchange(sent, {}); }

  std::set<std::string> busy_peers;
  std::map<std::string, std::vector<std::weak_ptr<std::function<void()>>>> waiting;

  std::vector<std::string> connects;
  std::vector<std::string> disconnects;
  int calls_begun_by_peer = 0;
  int calls_begun_here = 0;
  std::vector<std::string> demonitors_due;

  std::vector<Sent> sent;
  std::map<std::string, uint64_t> connected;
};

// Keeps posted work until run_all(), which does each job's work, then its done.
class FakeWorkers final : public chat::node::Workers {
 public:
  void post(std::function<void()> work, std::function<void()> done) override {
    jobs.emplace_back(std::move(work), std::move(done));
  }
  void run_all() {
    for (auto& [work, done] : std::exchange(jobs, {})) {
      work();
      done();
    }
  }
  std::vector<std::pair<std::function<void()>, std::function<void()>>> jobs;
};

class FakeTimers final : public chat::node::Timers {
 public:
  uint64_t start(uint64_t ms, std::function<void()> fire) override {
    pending[next] = {ms, std::move(fire)};
    return next++;
  }
  void cancel(uint64_t id) override { pending.erase(id); }
  uint64_t now_ms() override { return now; }
  // Fires every timer due within `ms`.
  void advance(uint64_t ms) {
    now += ms;
    std::vector<uint64_t> due;
    for (const auto& [id, t] : pending) {
      if (t.first <= ms) due.push_back(id);
    }
    for (auto id : due) {
      auto it = pending.find(id);
      if (it == pending.end()) continue;
      auto fn = std::move(it->second.second);
      pending.erase(it);
      fn();
    }
  }
  std::map<uint64_t, std::pair<uint64_t, std::function<void()>>> pending;
  uint64_t next = 1;
  uint64_t now = 0;
};

// A fresh directory under /tmp, removed with what it holds.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/chat-test.XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path = made != nullptr ? made : "";
  }
  ~TempDir() {
    if (!path.empty()) std::system(("rm -rf '" + path + "'").c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Writes `text` to the file `name` in the directory; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
};

// A temporary file for a node's stdout, closed after the Output that writes to it (declare it first).
struct TempFile {
  TempFile() : file(std::tmpfile()) {}
  ~TempFile() { std::fclose(file); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::FILE* file;
};

}  // namespace test
