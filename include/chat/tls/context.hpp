// One side's TLS configuration (OpenSSL's SSL_CTX): the node's certificate and key, the CAs it
// trusts and the rules of the handshake, built once at start-up from SideOptions. Everything
// that can be wrong with the files (missing, unreadable, not PEM, a key that does not match
// its certificate, an unknown cipher) is found here and thrown as a start-up error naming the
// file or option, so that no peer ever sees a half-configured node.
#pragma once

#include <memory>
#include <string>

#include "chat/tls/options.hpp"

struct ssl_ctx_st;

namespace chat::tls {

class Context {
 public:
  // Throws std::runtime_error (a start-up error) naming what is wrong.
  Context(const SideOptions& options, Side side);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  [[nodiscard]] Side side() const { return side_; }
  [[nodiscard]] const SideOptions& options() const { return options_; }
  [[nodiscard]] ssl_ctx_st* native() const { return ctx_; }
  [[nodiscard]] bool verify_peer() const;
  // For the start-up log: whose certificate, valid until when, what is verified.
  [[nodiscard]] std::string describe() const;

 private:
  void load_identity();
  void load_trust();
  void apply_rules();

  SideOptions options_;
  Side side_;
  ssl_ctx_st* ctx_ = nullptr;
  std::string subject_;
  std::string not_after_;
};

// The server and client contexts of a node.
struct DistContexts {
  std::shared_ptr<Context> server;
  std::shared_ptr<Context> client;
};

// Builds both sides; `source` names where the options came from, for messages. Throws as
// Context does.
DistContexts make_contexts(const DistOptions& options, const std::string& source);

}  // namespace chat::tls
