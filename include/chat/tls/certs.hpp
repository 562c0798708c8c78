// A cluster's own certificate authority, and node certificates issued from it (libcrypto).
//
// Why issue at boot: a BEAM client checks the server's certificate against the host part of
// the node name (inet_tls_dist passes it as server_name_indication), and on Heroku that host
// is the dyno's private IP, known only once the dyno runs. So each dyno holds the cluster CA's
// key (a secret config var, like the cookie) and issues itself a certificate for its own
// address when it starts: the C++ node in memory, a BEAM dyno through `chat-node tls-cert`,
// which writes the files its optfile names.
//
// Keys are ECDSA P-256: every OTP since 20 takes them, and a handshake signs and verifies far
// faster than with RSA.
#pragma once

#include <string>
#include <vector>

namespace chat::tls {

struct Issued {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted: keep it where only its owner reads it
};

struct Validity {
  long not_before_s = -3600;           // relative to now: an hour of clock skew between dynos
  long not_after_s = 825L * 24 * 3600;  // relative to now
};

// A self-signed CA certificate (CA:TRUE, pathlen 0: it signs node certificates only).
// Throws std::runtime_error if OpenSSL cannot.
Issued make_ca(const std::string& common_name, const Validity& validity);

// A certificate for a node at `hosts` (the first is its common name): a DNS name entry for
// each, and an IP address entry too for an address, so that every OTP's host name check
// passes (OTP 25 matches an address only against DNS name entries). For TLS servers and
// clients alike. Throws std::runtime_error naming what is wrong with the CA.
Issued issue_node_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                       const std::vector<std::string>& hosts, const Validity& validity);

// True if `pem` holds a certificate whose DNS or IP entries (or common name) name `host`.
bool certificate_names_host(const std::string& pem, const std::string& host);

}  // namespace chat::tls
