// One TLS connection as a sans-I/O engine: ciphertext from the peer in, plaintext out, and the
// records to send (handshake messages, encrypted data, alerts) collected in output(). It never
// touches a socket, so the stream layer drives it from the event loop without blocking, and
// tests and fuzzers drive it with bytes alone.
//
// OpenSSL reads and writes through a BIO of our own over the session's buffers (not a pair of
// memory BIOs): received bytes are read by OpenSSL straight from the caller's buffer, and the
// records it writes are appended to the output that the stream sends, with no third copy.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "chat/tls/context.hpp"

struct ssl_st;
struct bio_st;
struct x509_store_ctx_st;

namespace chat::tls {

class Session {
 public:
  // A client checks the server's certificate against `peer_host`, the host part of the node
  // name it connects to (inet_tls_dist passes it as server_name_indication), unless its
  // options set server_name_indication otherwise.
  static std::unique_ptr<Session> client(std::shared_ptr<const Context> ctx, const std::string& peer_host);
  static std::unique_ptr<Session> server(std::shared_ptr<const Context> ctx);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // A client's first flight (ClientHello) goes to output().
  void start();

  // Ciphertext from the peer. It is not copied: call read() until it stops returning data,
  // then end_feed(), which keeps whatever OpenSSL did not take yet.
  void feed(std::string_view ciphertext);
  void end_feed();

  enum class Status { kData, kNeedMore, kClosed, kFailed };
  struct ReadResult {
    Status status;
    size_t n = 0;  // bytes written into `out` when kData
  };
  // Advances the handshake, then decrypts into `out`. kClosed: the peer sent close_notify.
  // kFailed: error() says why (a verification failure names the certificate).
  ReadResult read(std::span<char> out);

  // Encrypts `plain` into records (only once established()). False once failed.
  bool write(std::string_view plain);
  // Queues close_notify (best effort; the peer may already be gone).
  void shutdown();

  [[nodiscard]] bool has_output() const { return !out_.empty(); }
  // Moves the pending ciphertext to `into` (whose buffer is reused for the next output).
  void take_output(std::string& into) {
    into.clear();
    into.swap(out_);
  }
  [[nodiscard]] size_t output_size() const { return out_.size(); }

  [[nodiscard]] bool client() const { return client_; }
  [[nodiscard]] bool established() const { return established_; }
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384, peer CN=kate": for the log once established.
  [[nodiscard]] std::string summary() const;

 private:
  Session(std::shared_ptr<const Context> ctx, bool client, const std::string& peer_host);
  ReadResult failure(int ssl_error);
  static int verify_callback(int ok, ::x509_store_ctx_st* store);
  friend struct SessionBio;

  std::shared_ptr<const Context> ctx_;
  ssl_st* ssl_ = nullptr;
  bool client_;
  std::string check_host_;  // a client's expected host; empty: no host name check
  std::string_view in_;     // unread ciphertext (in the caller's buffer, or in kept_)
  std::string kept_;
  std::string out_;
  std::string error_;
  std::string verify_error_;
  std::string first_bytes_;  // of the peer's stream, to recognise a plain distribution peer
  bool received_any_ = false;
  bool established_ = false;
  bool failed_ = false;
};

}  // namespace chat::tls
