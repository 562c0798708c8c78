// The TLS options of a distribution node, read from the same file a BEAM takes with
// `-ssl_dist_optfile FILE` (OTP's ssl_dist_sup:consult/1 reads it as one Erlang expression,
// `[{server, [Opt]}, {client, [Opt]}].`, and inet_tls_dist passes each side's list to
// ssl:handshake/3 or ssl:connect/4). Sans-I/O: text in, options or an error naming the option
// out; files are opened later, by Context.
//
// Each option either does here what OTP's ssl does with it, or is an error that names it:
// nothing is ignored without saying so (the few with no meaning outside a BEAM are listed in
// `no_effect`, which the node logs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chat::tls {

enum class Side { kServer, kClient };
enum class Verify { kNone, kPeer };
// server_name_indication: the host part of the peer's node name (what inet_tls_dist passes),
// none at all (`disable`: no SNI and no host name check, as ssl documents), or a given name.
enum class Sni { kNodeHost, kDisable, kName };

struct SideOptions {
  // Certificate, key and trusted CAs: from files (the optfile), or PEM text (environment
  // variables, see chat-node's --help). Text is used when the file name is empty.
  std::string certfile;
  std::string keyfile;  // defaults to certfile, as in ssl
  std::string cacertfile;
  std::string cert_pem;
  std::string key_pem;
  std::string cacert_pem;
  std::string password;  // of an encrypted key
  std::string dhfile;    // server: Diffie-Hellman parameters for DHE suites
  // Unset: verify_peer on a client, verify_none on a server (ssl's defaults since OTP 26).
  std::optional<Verify> verify;
  bool fail_if_no_peer_cert = false;
  int depth = 10;  // intermediate CAs allowed above the peer's certificate
  Sni sni = Sni::kNodeHost;
  std::string sni_name;
  // Empty: TLS 1.2 and 1.3. inet_tls_dist of OTP 25 and 27 offers only 1.2 unless told
  // otherwise, OTP 29 both; either way the peers settle on the highest they share.
  std::vector<std::string> versions;  // "tlsv1.2", "tlsv1.3"
  std::vector<std::string> ciphers;   // OpenSSL or RFC names
  bool honor_cipher_order = false;
  bool reuse_sessions = true;
  // {verify_fun, {fun inet_tls_dist:verify_client/3, _}}: a server checks that a client's
  // certificate names the client's address when net_kernel has an allow list; chat-node
  // has none, so (as in OTP with an empty list) every verified client passes.
  bool verify_client_fun = false;
  std::vector<std::string> no_effect;  // accepted options that change nothing here
};

struct DistOptions {
  SideOptions server;
  SideOptions client;
  bool has_server = false;
  bool has_client = false;
};

struct OptfileResult {
  DistOptions options;
  std::string error;  // empty on success; names the option and the side
  [[nodiscard]] bool ok() const { return error.empty(); }
};

// Reads an -ssl_dist_optfile's text. Limits the size of what it parses.
OptfileResult parse_optfile(std::string_view text);

// The defaults a node uses when its certificates come from the environment instead of an
// optfile: mutual verification, as the optfile chat-node writes for BEAM dynos has it.
DistOptions mutual_defaults();

// The optfile text for `options` with the given file names (what `chat-node tls-cert`
// writes for a BEAM to use the same certificates).
std::string render_optfile(const std::string& certfile, const std::string& keyfile, const std::string& cacertfile);

}  // namespace chat::tls
