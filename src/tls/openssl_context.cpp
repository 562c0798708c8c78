#include "openssl_context.hpp"
#include "openssl_session.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace chat::tls::openssl {

namespace {

// The TLS 1.3 suites, which OpenSSL configures apart from the TLS 1.2 cipher list.
constexpr const char* kTls13Suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                        "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256",
                                        "TLS_AES_128_CCM_8_SHA256"};

// OpenSSL's reason for the last failure, and the queue emptied.
std::string openssl_reason() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += r ? r : "error " + std::to_string(e);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Reads a whole file for PEM parsing, with the errno text when it cannot be read.
std::string read_file(const std::string& what, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
  std::string data;
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    data.append(buf, n);
    if (data.size() > (16U << 20U)) {
      std::fclose(f);
      throw std::runtime_error(what + " " + path + ": larger than 16 MB");
    }
  }
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) throw std::runtime_error(what + " " + path + ": read error");
  return data;
}

BioPtr memory_bio(const std::string& data) {
  BioPtr b(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!b) throw std::runtime_error("out of memory");
  return b;
}

// Never prompts on a terminal: the password is the option's, or there is none.
int password_cb(char* buf, int size, int /*rwflag*/, void* userdata) {
  const auto* pw = static_cast<const std::string*>(userdata);
  if (pw == nullptr || pw->empty() || static_cast<int>(pw->size()) > size) return 0;
  std::memcpy(buf, pw->data(), pw->size());
  return static_cast<int>(pw->size());
}

std::string x509_name(const X509_NAME* name) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b) return "?";
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  char* p = nullptr;
  const long n = BIO_get_mem_data(b.get(), &p);
  return n > 0 ? std::string(p, static_cast<size_t>(n)) : std::string("(empty subject)");
}

std::string asn1_time(const ASN1_TIME* t) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || ASN1_TIME_print(b.get(), t) != 1) return "?";
  char* p = nullptr;
  const long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

}  // namespace

OpensslContext::OpensslContext(const SideOptions& options, Side side) : options_(options), side_(side) {
  // No openssl.cnf: the node behaves the same on every machine, as the optfile says.
  OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
  ctx_ = SSL_CTX_new(side == Side::kServer ? TLS_server_method() : TLS_client_method());
  if (ctx_ == nullptr) throw std::runtime_error("cannot create a TLS context: " + openssl_reason());
  try {
    load_identity();
    load_trust();
    build_chain();
    apply_rules();
  } catch (...) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw;
  }
}

OpensslContext::~OpensslContext() { SSL_CTX_free(ctx_); }

bool OpensslContext::verify_peer() const {
  const Verify v = options_.verify.value_or(side_ == Side::kClient ? Verify::kPeer : Verify::kNone);
  return v == Verify::kPeer;
}

void OpensslContext::load_identity() {
  const auto& o = options_;
  std::string cert_pem = o.cert_pem;
  std::string cert_from = "the certificate PEM";
  if (!o.certfile.empty()) {
    cert_pem = read_file("certfile", o.certfile);
    cert_from = "certfile " + o.certfile;
  }
  if (cert_pem.empty()) {
    if (side_ == Side::kServer) {
      throw std::runtime_error("server: no certfile (a TLS server needs a certificate)");
    }
    return;  // a client without a certificate: the server decides whether that is enough
  }
  // The first certificate is the node's; any others are its chain, sent along with it.
  auto bio = memory_bio(cert_pem);
  X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) throw std::runtime_error(cert_from + ": no PEM certificate in it (" + openssl_reason() + ")");
  subject_ = x509_name(X509_get_subject_name(leaf));
  not_after_ = asn1_time(X509_get0_notAfter(leaf));
  const int used = SSL_CTX_use_certificate(ctx_, leaf);
  X509_free(leaf);
  if (used != 1) throw std::runtime_error(cert_from + ": " + openssl_reason());
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx_, extra) != 1) {
      X509_free(extra);
      throw std::runtime_error(cert_from + ": " + openssl_reason());
    }
  }
  ERR_clear_error();  // the end of the PEM sequence

  // keyfile defaults to certfile, as in ssl.
  std::string key_pem = o.key_pem;
  std::string key_from = "the key PEM";
  if (!o.keyfile.empty() || !o.certfile.empty()) {
    const std::string& path = o.keyfile.empty() ? o.certfile : o.keyfile;
    key_pem = o.keyfile.empty() ? cert_pem : read_file("keyfile", path);
    key_from = (o.keyfile.empty() ? "certfile " : "keyfile ") + path;
  }
  if (key_pem.empty()) throw std::runtime_error("no keyfile for " + cert_from);
  auto kbio = memory_bio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kbio.get(), nullptr, password_cb, const_cast<std::string*>(&o.password));
  if (key == nullptr) {
    const std::string why = openssl_reason();
    throw std::runtime_error(key_from + ": no usable private key (" + why +
                             (o.password.empty() ? "; if it is encrypted, give {password, ...}" : "") + ")");
  }
  const int key_used = SSL_CTX_use_PrivateKey(ctx_, key);
  EVP_PKEY_free(key);
  if (key_used != 1 || SSL_CTX_check_private_key(ctx_) != 1) {
    throw std::runtime_error(key_from + " does not match " + cert_from + " (" + openssl_reason() + ")");
  }
}

void OpensslContext::load_trust() {
  const auto& o = options_;
  std::string pem = o.cacert_pem;
  std::string from = "the CA certificate PEM";
  if (!o.cacertfile.empty()) {
    pem = read_file("cacertfile", o.cacertfile);
    from = "cacertfile " + o.cacertfile;
  }
  if (pem.empty()) {
    if (verify_peer()) {
      throw std::runtime_error(std::string(side_ == Side::kServer ? "server" : "client") +
                               ": verify_peer needs cacertfile (the CAs whose certificates to accept)" +
                               (side_ == Side::kClient && !options_.verify
                                    ? "; verify_peer is a client's default, give {verify, verify_none} to "
                                      "connect without checking"
                                    : ""));
    }
    return;
  }
  auto bio = memory_bio(pem);
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
  if (infos == nullptr) throw std::runtime_error(from + ": not PEM (" + openssl_reason() + ")");
  X509_STORE* store = SSL_CTX_get_cert_store(ctx_);
  int added = 0;
  for (int k = 0; k < sk_X509_INFO_num(infos); ++k) {
    X509_INFO* info = sk_X509_INFO_value(infos, k);
    if (info->x509 != nullptr && X509_STORE_add_cert(store, info->x509) == 1) ++added;
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  ERR_clear_error();
  if (added == 0) throw std::runtime_error(from + ": no PEM certificate in it");
}

// The chain sent with the node's certificate, built once here from the trusted CAs: left to
// OpenSSL, it is built and verified again for every handshake (an ECDSA verification and
// a store lookup each: 8.5% of a TLS node's CPU under handshake churn, measured).
// Without the root: a peer verifies against its own copy of it (it has to trust it), and
// each certificate sent costs the peer a decoding that OpenSSL 3.0 makes expensive (about a
// quarter of a handshake's CPU for two certificates). RFC 8446 4.4.2 lets the root out; OTP's
// ssl, as a client or a server, finds it among its cacerts. A certificate the CAs do not
// verify (expired, say) is sent as before, for the peer to refuse.
void OpensslContext::build_chain() {
  STACK_OF(X509)* given = nullptr;
  if (SSL_CTX_get0_certificate(ctx_) == nullptr || SSL_CTX_get0_chain_certs(ctx_, &given) != 1) return;
  if (given != nullptr && sk_X509_num(given) > 0) return;  // the certfile brought its own
  SSL_CTX_build_cert_chain(ctx_, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                     SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
  ERR_clear_error();
}

void OpensslContext::apply_rules() {
  const auto& o = options_;
  const char* side = side_ == Side::kServer ? "server" : "client";
  if (o.fail_if_no_peer_cert && !verify_peer()) {
    // ssl: {options, incompatible, [{verify, verify_none}, {fail_if_no_peer_cert, true}]}
    throw std::runtime_error(std::string(side) + ": fail_if_no_peer_cert needs {verify, verify_peer}");
  }
  SSL_CTX_set_verify_depth(ctx_, o.depth);

  int min = TLS1_2_VERSION;
  int max = TLS1_3_VERSION;
  if (!o.versions.empty()) {
    const bool v12 = std::find(o.versions.begin(), o.versions.end(), "tlsv1.2") != o.versions.end();
    const bool v13 = std::find(o.versions.begin(), o.versions.end(), "tlsv1.3") != o.versions.end();
    min = v12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    max = v13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  }
  SSL_CTX_set_min_proto_version(ctx_, min);
  SSL_CTX_set_max_proto_version(ctx_, max);

  if (!o.ciphers.empty()) {
    std::string list12;
    std::string list13;
    SSL_CTX* probe = SSL_CTX_new(TLS_method());
    for (const auto& name : o.ciphers) {
      const bool is13 = std::any_of(std::begin(kTls13Suites), std::end(kTls13Suites),
                                    [&](const char* s) { return name == s; });
      std::string openssl_name = name;
      if (!is13 && name.rfind("TLS_", 0) == 0) {
        // An RFC name of a TLS 1.2 suite, as ssl:cipher_suites/2 lists them.
        const char* n = OPENSSL_cipher_name(name.c_str());
        openssl_name = (n != nullptr && std::strcmp(n, "(NONE)") != 0) ? n : "";
      }
      if (!is13 && (openssl_name.empty() || probe == nullptr || SSL_CTX_set_cipher_list(probe, openssl_name.c_str()) != 1)) {
        SSL_CTX_free(probe);
        ERR_clear_error();
        throw std::runtime_error(std::string(side) + ": ciphers: unknown cipher \"" + name + "\"");
      }
      std::string& list = is13 ? list13 : list12;
      if (!list.empty()) list += ":";
      list += is13 ? name : openssl_name;
    }
    SSL_CTX_free(probe);
    if (!list12.empty() && SSL_CTX_set_cipher_list(ctx_, list12.c_str()) != 1) {
      throw std::runtime_error(std::string(side) + ": ciphers: " + openssl_reason());
    }
    if (!list13.empty() && SSL_CTX_set_ciphersuites(ctx_, list13.c_str()) != 1) {
      throw std::runtime_error(std::string(side) + ": ciphers: " + openssl_reason());
    }
  }

  if (side_ == Side::kServer) {
    static const unsigned char kSessionContext[] = "chat-node dist";
    SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof kSessionContext - 1);
    if (o.honor_cipher_order) SSL_CTX_set_options(ctx_, SSL_OP_CIPHER_SERVER_PREFERENCE);
    // No TLS 1.3 tickets, as OTP's server sends none by default ({session_tickets, disabled}):
    // dist clients never resume, and each ticket costs the handshake an encryption.
    SSL_CTX_set_num_tickets(ctx_, 0);
    if (!o.reuse_sessions) {
      SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_options(ctx_, SSL_OP_NO_TICKET);
    }
    if (!o.dhfile.empty()) {
      const std::string pem = read_file("dhfile", o.dhfile);
      auto bio = memory_bio(pem);
      EVP_PKEY* dh = PEM_read_bio_Parameters(bio.get(), nullptr);
      if (dh == nullptr || SSL_CTX_set0_tmp_dh_pkey(ctx_, dh) != 1) {
        EVP_PKEY_free(dh);
        throw std::runtime_error("dhfile " + o.dhfile + ": no usable DH parameters (" + openssl_reason() + ")");
      }
    } else {
      SSL_CTX_set_dh_auto(ctx_, 1);
    }
  } else {
    // The client keeps no session cache: each connection is a full handshake.
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
  }
  // Idle connections hold no record buffers (about 34 KB each otherwise).
  SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
}

std::string OpensslContext::describe() const {
  std::string out = side_ == Side::kServer ? "server" : "client";
  out += subject_.empty() ? ": no certificate" : ": certificate " + subject_ + " (until " + not_after_ + ")";
  out += verify_peer() ? ", verify_peer" : ", verify_none";
  if (side_ == Side::kServer && options_.fail_if_no_peer_cert) out += ", fail_if_no_peer_cert";
  if (side_ == Side::kClient) {
    out += options_.sni == Sni::kDisable ? ", no host name check"
           : options_.sni == Sni::kName  ? ", host name " + options_.sni_name
                                         : ", host name from the node name";
  }
  return out;
}

std::unique_ptr<Session> OpensslContext::client_session(const std::string& peer_host) const {
  return OpensslSession::create(shared_from_this(), true, peer_host);
}

std::unique_ptr<Session> OpensslContext::server_session() const {
  return OpensslSession::create(shared_from_this(), false, {});
}

}  // namespace chat::tls::openssl
