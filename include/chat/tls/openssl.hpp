// The OpenSSL implementation of engine.hpp (src/tls/openssl_*.cpp, library chat_tls_openssl).
// Linked into chat-node-tls, the tests, the fuzzers and the benchmark tools; not into
// chat-node (see engine.hpp for why).
#pragma once

#include "chat/tls/engine.hpp"

namespace chat::tls {

const Engine& openssl_engine();

}  // namespace chat::tls
