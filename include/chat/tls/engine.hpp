// TLS as the rest of the node sees it: one side's configuration (Context), one connection as
// a sans-I/O engine (Session: ciphertext in, plaintext out, records to send collected in its
// output), and the cluster CA's certificates, behind an Engine.
//
// Why an interface: the OpenSSL implementation (src/tls/openssl_*.cpp) links libssl and most
// of libcrypto, whose tables are relocated when a position-independent program starts; linked
// into chat-node that costs every node, TLS or not, about 0.9 MB of resident memory (idle RSS
// 2.5 -> 3.4 MB, measured). So chat-node carries only this interface, and the implementation
// lives in chat-node-tls, the same program plus OpenSSL, which chat-node runs in its place
// (exec) when it is asked for TLS. Tests, fuzzers and the benchmark tools link it directly.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/tls/options.hpp"

namespace chat::tls {

class Session {
 public:
  virtual ~Session() = default;

  // A client's first flight (ClientHello) goes to the output.
  virtual void start() = 0;
  // Ciphertext from the peer. It is not copied: call read() until it stops returning data,
  // then end_feed(), which keeps whatever OpenSSL did not take yet.
  virtual void feed(std::string_view ciphertext) = 0;
  virtual void end_feed() = 0;

  enum class Status { kData, kNeedMore, kClosed, kFailed };
  struct ReadResult {
    Status status;
    size_t n = 0;  // bytes written into `out` when kData
  };
  // Advances the handshake, then decrypts into `out`. kClosed: the peer sent close_notify.
  // kFailed: error() says why (a verification failure names the certificate).
  virtual ReadResult read(std::span<char> out) = 0;
  // Encrypts `plain` into records (only once established()). False once failed.
  virtual bool write(std::string_view plain) = 0;
  // Queues close_notify (best effort; the peer may already be gone).
  virtual void shutdown() = 0;

  // Where records may go the moment they are made instead of into the output: towards the
  // socket, while nothing is queued ahead of them, so that a large write is not first gathered
  // in a buffer as large as itself. take() returns how many bytes of `records` it took. It is
  // offered records only while the output is empty, so they keep their order; what it leaves
  // goes to the output. An empty Sink (the default) sends everything to the output.
  struct Sink {
    size_t (*take)(void* ctx, std::string_view records) = nullptr;
    void* ctx = nullptr;
  };
  virtual void set_sink(Sink sink) = 0;

  [[nodiscard]] virtual bool has_output() const = 0;
  // Moves the pending ciphertext to `into` (whose buffer is reused for the next output).
  virtual void take_output(std::string& into) = 0;
  [[nodiscard]] virtual size_t output_size() const = 0;

  [[nodiscard]] virtual bool client() const = 0;
  [[nodiscard]] virtual bool established() const = 0;
  [[nodiscard]] virtual bool failed() const = 0;
  [[nodiscard]] virtual const std::string& error() const = 0;
  // "TLSv1.3 TLS_AES_256_GCM_SHA384, peer /CN=kate": for the log once established.
  [[nodiscard]] virtual std::string summary() const = 0;
};

// One side's configuration, built once at start-up. Everything that can be wrong with the
// files (missing, unreadable, not PEM, a key that does not match its certificate, an unknown
// cipher) is found when it is made, so that no peer ever sees a half-configured node.
class Context {
 public:
  virtual ~Context() = default;
  [[nodiscard]] virtual Side side() const = 0;
  [[nodiscard]] virtual const SideOptions& options() const = 0;
  [[nodiscard]] virtual bool verify_peer() const = 0;
  // For the start-up log: whose certificate, valid until when, what is verified.
  [[nodiscard]] virtual std::string describe() const = 0;
  // A session of this context (nullptr only when out of memory). A client checks the
  // server's certificate against `peer_host`, the host part of the node name it connects to
  // (inet_tls_dist passes it as server_name_indication), unless its options say otherwise.
  [[nodiscard]] virtual std::unique_ptr<Session> client_session(const std::string& peer_host) const = 0;
  [[nodiscard]] virtual std::unique_ptr<Session> server_session() const = 0;
};

// Certificates from the cluster's own CA (see certs in src/tls/openssl_certs.cpp for why a
// node issues its own at boot).
struct Issued {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted: keep it where only its owner reads it
};

struct Validity {
  long not_before_s = -3600;           // relative to now: an hour of clock skew between dynos
  long not_after_s = 825L * 24 * 3600;  // relative to now
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Throws std::runtime_error (a start-up error) naming what is wrong.
  [[nodiscard]] virtual std::shared_ptr<Context> context(const SideOptions& options, Side side) const = 0;
  // A self-signed CA certificate (CA:TRUE, pathlen 0: it signs node certificates only).
  [[nodiscard]] virtual Issued make_ca(const std::string& common_name, const Validity& validity) const = 0;
  // A certificate for a node at `hosts` (the first is its common name): a DNS name entry for
  // each, and an IP address entry too for an address, so that every OTP's host name check
  // passes (OTP 25 matches an address only against DNS name entries). For TLS servers and
  // clients alike. `ca_cert_pem` may hold several certificates (a CA being rotated): the one
  // `ca_key_pem` belongs to signs. Throws std::runtime_error naming what is wrong.
  [[nodiscard]] virtual Issued issue_node_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                                               const std::vector<std::string>& hosts,
                                               const Validity& validity) const = 0;
  // True if `pem` holds a certificate whose DNS or IP entries (or common name) name `host`.
  [[nodiscard]] virtual bool certificate_names_host(const std::string& pem, const std::string& host) const = 0;
};

// The engine this program was linked with, or nullptr (chat-node: TLS runs in chat-node-tls).
const Engine* engine();
void install(const Engine* e);

// The server and client contexts of a node.
struct DistContexts {
  std::shared_ptr<Context> server;
  std::shared_ptr<Context> client;
};

// Builds both sides with engine(); `source` names where the options came from, for messages.
// Throws std::runtime_error as Engine::context does (or when there is no engine).
DistContexts make_contexts(const DistOptions& options, const std::string& source);

}  // namespace chat::tls
