// TLS distribution as chat-node is told to use it: from the same optfile a BEAM takes
// (--ssl-dist-optfile, or $CHAT_SSL_DIST_OPTFILE), or from the cluster's certificates in
// environment variables (Heroku config vars), and the two commands that make them:
//
//   chat-node tls-ca --out DIR          a cluster CA: DIR/ca.pem, DIR/ca.key
//   chat-node tls-cert HOST --out DIR   a certificate for a node at HOST, signed by the CA,
//                                       and DIR/ssl_dist.conf for erl -ssl_dist_optfile;
//                                       prints the erl flags that use them
//
// Environment: CHAT_TLS_CACERT (the CA certificate, PEM) and either CHAT_TLS_CERT and
// CHAT_TLS_KEY (this node's certificate and key) or CHAT_TLS_CA_KEY (the CA's key: the node
// issues itself a certificate for the host of its node name when it starts, in memory).
// Keys read from the environment are removed from it, so that no child process inherits them.
#pragma once

#include "chat/app/options.hpp"
#include "chat/tls/engine.hpp"

namespace chat::app {

// Whether these options ask for TLS (then chat-node runs chat-node-tls in its place).
bool wants_tls(const Options& options);

// The node's TLS contexts; both empty for plain TCP. Throws std::invalid_argument or
// std::runtime_error (start-up errors) naming the file or variable at fault.
tls::DistContexts dist_tls(const Options& options);

int run_tls_ca(const Options& options);
int run_tls_cert(const Options& options);

}  // namespace chat::app
