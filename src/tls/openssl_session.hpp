// One TLS connection on OpenSSL, as a sans-I/O engine (the Session of engine.hpp).
//
// OpenSSL reads and writes through a BIO of our own over the session's buffers (not a pair of
// memory BIOs): received bytes are read by OpenSSL straight from the caller's buffer, and the
// records it writes are appended to the output that the stream sends, with no third copy.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "chat/tls/engine.hpp"

struct ssl_st;
struct x509_store_ctx_st;

namespace chat::tls::openssl {

class OpensslContext;

class OpensslSession final : public Session {
 public:
  // nullptr when OpenSSL cannot make one (out of memory).
  static std::unique_ptr<Session> create(std::shared_ptr<const OpensslContext> ctx, bool client,
                                         const std::string& peer_host);
  ~OpensslSession() override;
  OpensslSession(const OpensslSession&) = delete;
  OpensslSession& operator=(const OpensslSession&) = delete;

  void start() override;
  void feed(std::string_view ciphertext) override;
  void end_feed() override;
  ReadResult read(std::span<char> out) override;
  bool write(std::string_view plain) override;
  void shutdown() override;

  void set_sink(Sink sink) override { sink_ = sink; }
  [[nodiscard]] bool has_output() const override { return !out_.empty(); }
  void take_output(std::string& into) override {
    into.clear();
    into.swap(out_);
  }
  [[nodiscard]] size_t output_size() const override { return out_.size(); }

  [[nodiscard]] bool client() const override { return client_; }
  [[nodiscard]] bool established() const override { return established_; }
  [[nodiscard]] bool failed() const override { return failed_; }
  [[nodiscard]] const std::string& error() const override { return error_; }
  [[nodiscard]] std::string summary() const override;

 private:
  OpensslSession(std::shared_ptr<const OpensslContext> ctx, bool client, const std::string& peer_host);
  ReadResult failure(int ssl_error);
  static int verify_callback(int ok, ::x509_store_ctx_st* store);
  friend struct SessionBio;

  std::shared_ptr<const OpensslContext> ctx_;
  ssl_st* ssl_ = nullptr;
  bool client_;
  std::string check_host_;  // a client's expected host; empty: no host name check
  std::string_view in_;     // unread ciphertext (in the caller's buffer, or in kept_)
  std::string kept_;
  std::string out_;
  Sink sink_;
  std::string error_;
  std::string verify_error_;
  std::string first_bytes_;  // of the peer's stream, to recognise a plain distribution peer
  bool received_any_ = false;
  bool established_ = false;
  bool failed_ = false;
};

}  // namespace chat::tls::openssl
