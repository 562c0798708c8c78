#include "openssl_session.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "openssl_context.hpp"

namespace chat::tls::openssl {

namespace {

bool ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string subject_of(X509* cert) {
  if (cert == nullptr) return "?";
  char buf[256] = {0};
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf - 1);
  return buf;
}

// Every OpenSSL reason queued, most specific last, and the queue emptied.
std::string reasons() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    const std::string text = r ? r : "error " + std::to_string(e);
    if (out.find(text) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out;
}

}  // namespace

// The BIO OpenSSL reads records from and writes records to: the session's input view and its
// output string. Reading an empty input says "retry", which OpenSSL turns into WANT_READ.
struct SessionBio {
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "chat-node TLS session");
      BIO_meth_set_write_ex(bm, &SessionBio::write);
      BIO_meth_set_read_ex(bm, &SessionBio::read);
      BIO_meth_set_ctrl(bm, &SessionBio::ctrl);
      BIO_meth_set_create(bm, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return bm;
    }();
    return m;
  }
  static int write(BIO* b, const char* data, size_t n, size_t* written) {
    auto* s = static_cast<OpensslSession*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    *written = n;
    if (s->out_.empty() && s->sink_.take != nullptr) {
      const size_t taken = std::min(n, s->sink_.take(s->sink_.ctx, std::string_view(data, n)));
      data += taken;
      n -= taken;
    }
    s->out_.append(data, n);
    return 1;
  }
  static int read(BIO* b, char* data, size_t n, size_t* got) {
    auto* s = static_cast<OpensslSession*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (s->in_.empty()) {
      BIO_set_retry_read(b);
      *got = 0;
      return 0;
    }
    const size_t k = std::min(n, s->in_.size());
    std::memcpy(data, s->in_.data(), k);
    s->in_.remove_prefix(k);
    *got = k;
    return 1;
  }
  static long ctrl(BIO* /*b*/, int cmd, long /*num*/, void* /*ptr*/) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
  }
};

OpensslSession::OpensslSession(std::shared_ptr<const OpensslContext> ctx, bool client, const std::string& peer_host)
    : ctx_(std::move(ctx)), client_(client) {
  ssl_ = SSL_new(ctx_->native());
  if (ssl_ == nullptr) return;
  BIO* bio = BIO_new(SessionBio::method());
  if (bio == nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  SSL_set_app_data(ssl_, this);
  const auto& o = ctx_->options();
  const bool verify = ctx_->verify_peer();
  int mode = SSL_VERIFY_NONE;
  if (verify) {
    mode = SSL_VERIFY_PEER;
    if (!client && o.fail_if_no_peer_cert) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_set_verify(ssl_, mode, verify ? &OpensslSession::verify_callback : nullptr);
  if (client) {
    const std::string name = o.sni == Sni::kName ? o.sni_name : peer_host;
    if (o.sni != Sni::kDisable) {
      // RFC 6066: no IP literals in SNI. The host name check below covers addresses too.
      if (!name.empty() && !ip_literal(name)) SSL_set_tlsext_host_name(ssl_, name.c_str());
      if (verify) check_host_ = name;
    }
    SSL_set_connect_state(ssl_);
  } else {
    SSL_set_accept_state(ssl_);
  }
}

std::unique_ptr<Session> OpensslSession::create(std::shared_ptr<const OpensslContext> ctx, bool client,
                                                const std::string& peer_host) {
  std::unique_ptr<OpensslSession> s(new OpensslSession(std::move(ctx), client, peer_host));
  if (s->ssl_ == nullptr) return nullptr;
  return s;
}

OpensslSession::~OpensslSession() { SSL_free(ssl_); }

// Runs for each certificate of the peer's chain, from the root down to the peer's own
// (depth 0), after OpenSSL's own checks; `ok` is their verdict. The host name check is
// public_key:pkix_verify_hostname's: a DNS name (or, without any, the common name) equal to
// the host, or for an address, an IP address entry too.
int OpensslSession::verify_callback(int ok, x509_store_ctx_st* store) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* self = ssl ? static_cast<OpensslSession*>(SSL_get_app_data(ssl)) : nullptr;
  if (self == nullptr) return ok;
  const int depth = X509_STORE_CTX_get_error_depth(store);
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  if (ok == 0) {
    if (self->verify_error_.empty()) {
      self->verify_error_ = std::string(X509_verify_cert_error_string(X509_STORE_CTX_get_error(store))) +
                            " (depth " + std::to_string(depth) + ": " + subject_of(cert) + ")";
    }
    return 0;
  }
  if (depth == 0 && !self->check_host_.empty()) {
    const std::string& host = self->check_host_;
    const bool named = X509_check_host(cert, host.c_str(), host.size(), 0, nullptr) == 1 ||
                       (ip_literal(host) && X509_check_ip_asc(cert, host.c_str(), 0) == 1);
    if (!named) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
      self->verify_error_ = "the certificate does not name host " + host + " (" + subject_of(cert) + ")";
      return 0;
    }
  }
  return 1;
}

void OpensslSession::start() {
  if (!client_ || failed_ || established_) return;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    established_ = true;
  } else if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
    failure(SSL_get_error(ssl_, r));
  }
}

void OpensslSession::feed(std::string_view ciphertext) {
  if (!received_any_ && !ciphertext.empty()) {
    received_any_ = true;
    first_bytes_ = std::string(ciphertext.substr(0, 3));
  }
  if (in_.empty()) {
    in_ = ciphertext;
    return;
  }
  // Bytes kept from an earlier feed come first.
  std::string joined(in_);
  joined.append(ciphertext);
  kept_.swap(joined);
  in_ = kept_;
}

void OpensslSession::end_feed() {
  if (in_.empty()) {
    kept_.clear();
    in_ = {};
    return;
  }
  std::string rest(in_);
  kept_.swap(rest);
  in_ = kept_;
}

Session::ReadResult OpensslSession::read(std::span<char> out) {
  if (failed_) return {Status::kFailed};
  ERR_clear_error();
  if (!established_) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const int e = SSL_get_error(ssl_, r);
      return e == SSL_ERROR_WANT_READ ? ReadResult{Status::kNeedMore} : failure(e);
    }
    established_ = true;
  }
  if (out.empty()) return {Status::kNeedMore};
  size_t n = 0;
  const int r = SSL_read_ex(ssl_, out.data(), out.size(), &n);
  if (r == 1) return {Status::kData, n};
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return {Status::kNeedMore};
  if (e == SSL_ERROR_ZERO_RETURN) return {Status::kClosed};
  return failure(e);
}

Session::ReadResult OpensslSession::failure(int ssl_error) {
  failed_ = true;
  std::string why = ssl_error == SSL_ERROR_SSL ? reasons() : "";
  if (why.empty()) why = "TLS error " + std::to_string(ssl_error);
  if (!verify_error_.empty()) why += ": " + verify_error_;
  // A BEAM started without -proto_dist inet_tls opens with a distribution handshake message:
  // a 2-byte length and 'N' (or 'n'), where a TLS record starts with 22 (a handshake record).
  if (!client_ && !established_ && first_bytes_.size() == 3 && (first_bytes_[2] == 'N' || first_bytes_[2] == 'n') &&
      static_cast<unsigned char>(first_bytes_[0]) == 0) {
    why += " (the peer speaks plain TCP distribution: is it running without -proto_dist inet_tls?)";
  }
  error_ = std::move(why);
  ERR_clear_error();
  return {Status::kFailed};
}

bool OpensslSession::write(std::string_view plain) {
  if (failed_ || !established_) return false;
  // Room for the records up front (a 16 KB record adds at most a header, a tag and padding):
  // growing the output record by record would copy it again and fault in new pages each time.
  // Not while a sink takes them: it usually takes all.
  constexpr size_t kRecord = 16384;
  constexpr size_t kOverhead = 5 + 256 + 16;
  if (sink_.take == nullptr || !out_.empty()) {
    out_.reserve(out_.size() + plain.size() + (plain.size() / kRecord + 1) * kOverhead);
  }
  while (!plain.empty()) {
    ERR_clear_error();
    size_t written = 0;
    const int r = SSL_write_ex(ssl_, plain.data(), plain.size(), &written);
    if (r != 1) {
      failure(SSL_get_error(ssl_, r));
      return false;
    }
    plain.remove_prefix(written);
  }
  return true;
}

void OpensslSession::shutdown() {
  if (!established_ || failed_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string OpensslSession::summary() const {
  std::string out = std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
  if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
    out += ", peer " + subject_of(peer);
    X509_free(peer);
  } else {
    out += ", peer without a certificate";
  }
  return out;
}

}  // namespace chat::tls::openssl
