#include "openssl_certs.hpp"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

namespace chat::tls::openssl {

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

[[noreturn]] void fail(const std::string& what) {
  std::string why;
  while (const unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (!why.empty()) why += "; ";
    why += r ? r : "error " + std::to_string(e);
  }
  throw std::runtime_error(what + (why.empty() ? "" : ": " + why));
}

bool ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

KeyPtr new_key() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("cannot generate a P-256 key");
  return key;
}

std::string pem_of(X509* cert) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), cert) != 1) fail("cannot write a certificate");
  char* p = nullptr;
  const long n = BIO_get_mem_data(b.get(), &p);
  return {p, static_cast<size_t>(n)};
}

std::string pem_of(EVP_PKEY* key) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) fail("cannot write a key");
  char* p = nullptr;
  const long n = BIO_get_mem_data(b.get(), &p);
  return {p, static_cast<size_t>(n)};
}

// A certificate with a random 127-bit serial, the validity, subject CN and public key.
X509Ptr new_cert(EVP_PKEY* key, const std::string& common_name, const Validity& v) {
  X509Ptr x(X509_new());
  if (!x || X509_set_version(x.get(), 2) != 1) fail("cannot create a certificate");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("no random bytes for a serial number");
  serial[0] &= 0x7fU;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  if (bn == nullptr || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get())) == nullptr) {
    BN_free(bn);
    fail("cannot set a serial number");
  }
  BN_free(bn);
  if (X509_gmtime_adj(X509_getm_notBefore(x.get()), v.not_before_s) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x.get()), v.not_after_s) == nullptr) {
    fail("cannot set the validity");
  }
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 -1, -1, 0) != 1) {
    fail("cannot set the common name " + common_name);
  }
  if (X509_set_pubkey(x.get(), key) != 1) fail("cannot set the public key");
  return x;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("cannot make the extension " + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) fail("cannot add the extension " + value);
}

X509Ptr read_cert(const std::string& pem) {
  BioPtr b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr x(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
  return x;
}

}  // namespace

Issued make_ca(const std::string& common_name, const Validity& validity) {
  auto key = new_key();
  auto x = new_cert(key.get(), common_name, validity);
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(x.get())) != 1) fail("cannot set the issuer");
  add_ext(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_ext(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash");
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) fail("cannot sign the CA certificate");
  return {pem_of(x.get()), pem_of(key.get())};
}

Issued issue_node_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                       const std::vector<std::string>& hosts, const Validity& validity) {
  if (hosts.empty()) throw std::runtime_error("no host to issue a certificate for");
  BioPtr kb(BIO_new_mem_buf(ca_key_pem.data(), static_cast<int>(ca_key_pem.size())));
  KeyPtr ca_key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!ca_key) fail("the CA key is not an unencrypted PEM private key");
  // The CA PEM may hold several certificates (old and new while a CA is rotated): the one
  // that belongs to the key signs.
  BioPtr cb(BIO_new_mem_buf(ca_cert_pem.data(), static_cast<int>(ca_cert_pem.size())));
  X509Ptr ca;
  bool any = false;
  while (X509* c = cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr) {
    any = true;
    X509Ptr candidate(c);
    if (X509_check_private_key(c, ca_key.get()) == 1) {
      ca = std::move(candidate);
      break;
    }
  }
  ERR_clear_error();
  if (!any) fail("the CA certificate is not PEM");
  if (!ca) throw std::runtime_error("the CA key does not belong to the CA certificate");

  auto key = new_key();
  auto x = new_cert(key.get(), hosts.front(), validity);
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(ca.get())) != 1) fail("cannot set the issuer");
  std::string san;
  for (const auto& h : hosts) {
    if (h.empty() || h.find(',') != std::string::npos) throw std::runtime_error("bad host name '" + h + "'");
    san += (san.empty() ? "" : ",") + std::string("DNS:") + h;
    if (ip_literal(h)) san += ",IP:" + h;
  }
  add_ext(x.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(x.get(), ca.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(x.get(), ca.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  add_ext(x.get(), ca.get(), NID_subject_alt_name, san);
  add_ext(x.get(), ca.get(), NID_subject_key_identifier, "hash");
  add_ext(x.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  if (X509_sign(x.get(), ca_key.get(), EVP_sha256()) == 0) fail("cannot sign the node certificate");
  return {pem_of(x.get()), pem_of(key.get())};
}

bool certificate_names_host(const std::string& pem, const std::string& host) {
  auto x = read_cert(pem);
  ERR_clear_error();
  if (!x) return false;
  return X509_check_host(x.get(), host.c_str(), host.size(), 0, nullptr) == 1 ||
         (ip_literal(host) && X509_check_ip_asc(x.get(), host.c_str(), 0) == 1);
}

}  // namespace chat::tls::openssl
