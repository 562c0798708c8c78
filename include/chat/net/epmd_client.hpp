// EPMD over the loop: one-shot requests (PORT_PLEASE2, NAMES) and the registration, which
// lasts as long as its connection stays open.
#pragma once

#include <netinet/in.h>

#include <functional>
#include <string>

#include "chat/epmd/protocol.hpp"
#include "chat/net/stream.hpp"

namespace chat::net {

// Sends `request` to EPMD at `addr` and hands everything EPMD sent back to `done` once EPMD
// closes the connection (or, with `complete`, as soon as the reply is complete). `error` is
// empty on success. Frees itself.
class EpmdRequest final : Stream::Events {
 public:
  using Done = std::function<void(const std::string& reply, const std::string& error)>;
  using Complete = std::function<bool(const std::string& reply)>;
  // An EPMD that accepts and never answers is given up after `timeout_ms`.
  static void start(uv_loop_t* loop, const sockaddr_storage& addr, std::string request, Complete complete, Done done,
                    uint64_t timeout_ms = 3000);

 private:
  EpmdRequest(std::string request, Complete complete, Done done)
      : request_(std::move(request)), complete_(std::move(complete)), done_(std::move(done)) {}
  void on_connected(Stream& s) override;
  void on_data(Stream& s, std::string_view bytes) override;
  void on_closed(Stream& s, const std::string& why) override;
  void finish(const std::string& error);

  std::string request_;
  Complete complete_;
  Done done_;
  std::string reply_;
  Stream* stream_ = nullptr;
  uv_timer_t* timer_ = nullptr;
};

class EpmdRegistration final : Stream::Events {
 public:
  using Registered = std::function<void(uint32_t creation)>;
  using Failed = std::function<void(const std::string& why)>;
  // `failed` is called once: on refusal, on connection failure, or when EPMD goes away later.
  EpmdRegistration(uv_loop_t* loop, const sockaddr_storage& addr, const std::string& alive, uint16_t port,
                   Registered registered, Failed failed);
  EpmdRegistration(const EpmdRegistration&) = delete;
  EpmdRegistration& operator=(const EpmdRegistration&) = delete;
  // Closing the connection is what unregisters the node.
  ~EpmdRegistration() override;

 private:
  void on_connected(Stream& s) override;
  void on_data(Stream& s, std::string_view bytes) override;
  void on_closed(Stream& s, const std::string& why) override;
  void fail(const std::string& why);

  std::string request_;
  Registered registered_;
  Failed failed_;
  std::string reply_;
  bool done_ = false;
  Stream* stream_ = nullptr;
};

}  // namespace chat::net
