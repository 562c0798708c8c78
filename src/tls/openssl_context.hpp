// One side's TLS configuration as an OpenSSL SSL_CTX, built once at start-up from SideOptions.
// Everything that can be wrong with the files (missing, unreadable, not PEM, a key that does
// not match its certificate, an unknown cipher) is thrown as a start-up error naming the file
// or option.
#pragma once

#include <memory>
#include <string>

#include "chat/tls/engine.hpp"

struct ssl_ctx_st;

namespace chat::tls::openssl {

class OpensslContext final : public Context, public std::enable_shared_from_this<OpensslContext> {
 public:
  // Throws std::runtime_error (a start-up error) naming what is wrong.
  OpensslContext(const SideOptions& options, Side side);
  ~OpensslContext() override;
  OpensslContext(const OpensslContext&) = delete;
  OpensslContext& operator=(const OpensslContext&) = delete;

  [[nodiscard]] Side side() const override { return side_; }
  [[nodiscard]] const SideOptions& options() const override { return options_; }
  [[nodiscard]] bool verify_peer() const override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] std::unique_ptr<Session> client_session(const std::string& peer_host) const override;
  [[nodiscard]] std::unique_ptr<Session> server_session() const override;
  [[nodiscard]] ssl_ctx_st* native() const { return ctx_; }

 private:
  void load_identity();
  void load_trust();
  void build_chain();
  void apply_rules();

  SideOptions options_;
  Side side_;
  ssl_ctx_st* ctx_ = nullptr;
  std::string subject_;
  std::string not_after_;
};

}  // namespace chat::tls::openssl
