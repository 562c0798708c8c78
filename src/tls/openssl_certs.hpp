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
// faster than with RSA. What each function promises is said in engine.hpp (Engine).
#pragma once

#include <string>
#include <vector>

#include "chat/tls/engine.hpp"

namespace chat::tls::openssl {

Issued make_ca(const std::string& common_name, const Validity& validity);
Issued issue_node_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                       const std::vector<std::string>& hosts, const Validity& validity);
bool certificate_names_host(const std::string& pem, const std::string& host);

}  // namespace chat::tls::openssl
