// TLS below the distribution: the optfile's options, contexts built from them, and two sans-I/O
// sessions talking to each other through memory, with certificates from certs.hpp.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

#include "chat/tls/engine.hpp"
#include "chat/tls/openssl.hpp"
#include "chat/tls/options.hpp"
#include "fakes.hpp"

using namespace chat::tls;

namespace {

constexpr long kDay = 24L * 3600;

const Engine& ossl() { return openssl_engine(); }
Issued make_ca(const std::string& cn, const Validity& v) { return ossl().make_ca(cn, v); }
Issued issue_node_cert(const std::string& cert, const std::string& key, const std::vector<std::string>& hosts,
                       const Validity& v) {
  return ossl().issue_node_cert(cert, key, hosts, v);
}
bool certificate_names_host(const std::string& pem, const std::string& host) {
  return ossl().certificate_names_host(pem, host);
}
std::shared_ptr<Context> context(const SideOptions& o, Side s) { return ossl().context(o, s); }

struct Pki {
  Issued ca = make_ca("test cluster CA", {});
  Issued other_ca = make_ca("someone else's CA", {});
  Issued node(const std::string& host, Validity v = {}) const { return issue_node_cert(ca.cert_pem, ca.key_pem, {host}, v); }
};
const Pki& pki() {
  static const Pki p;
  return p;
}

SideOptions side(const Issued& id, const Issued& ca, bool server) {
  SideOptions o;
  o.cert_pem = id.cert_pem;
  o.key_pem = id.key_pem;
  o.cacert_pem = ca.cert_pem;
  o.verify = Verify::kPeer;
  o.fail_if_no_peer_cert = server;
  return o;
}

struct Pair {
  std::unique_ptr<Session> client;
  std::unique_ptr<Session> server;
  std::string to_client;  // plaintext each side received
  std::string to_server;
  bool client_closed = false;
  bool server_closed = false;
};

// Moves records between the two sides, `step` bytes at a time, until neither has any.
void pump(Pair& p, size_t step = 1U << 20U, size_t read_size = 16384) {
  std::string wire;
  std::string buf(read_size, '\0');
  const auto deliver = [&](Session& to, std::string& plain, bool& closed) {
    for (size_t at = 0; at < wire.size(); at += step) {
      to.feed(std::string_view(wire).substr(at, step));
      for (;;) {
        const auto r = to.read(buf);
        if (r.status == Session::Status::kData) {
          plain.append(buf.data(), r.n);
          continue;
        }
        closed = closed || r.status == Session::Status::kClosed;
        break;
      }
      to.end_feed();
    }
  };
  for (int rounds = 0; rounds < 50; ++rounds) {
    bool moved = false;
    if (p.client->has_output()) {
      p.client->take_output(wire);
      deliver(*p.server, p.to_server, p.server_closed);
      moved = true;
    }
    if (p.server->has_output()) {
      p.server->take_output(wire);
      deliver(*p.client, p.to_client, p.client_closed);
      moved = true;
    }
    if (!moved) return;
  }
}

Pair connect(const SideOptions& client, const SideOptions& server, const std::string& host = "127.0.0.1",
             size_t step = 1U << 20U) {
  Pair p;
  p.client = context(client, Side::kClient)->client_session(host);
  p.server = context(server, Side::kServer)->server_session();
  REQUIRE(p.client);
  REQUIRE(p.server);
  p.client->start();
  pump(p, step);
  return p;
}

std::string build_error(const SideOptions& o, Side s) {
  try {
    (void)context(o, s);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}


}  // namespace

TEST_SUITE("tls") {
  TEST_CASE("the optfile of issue 14 maps to mutual verification") {
    const auto r = parse_optfile(R"([{server, [{certfile, "/app/certs/node.pem"}, {keyfile, "/app/certs/node.key"},
           {cacertfile, "/app/certs/ca.pem"}, {verify, verify_peer},
           {fail_if_no_peer_cert, true}, {secure_renegotiate, true}]},
 {client, [{certfile, "/app/certs/node.pem"}, {keyfile, "/app/certs/node.key"},
           {cacertfile, "/app/certs/ca.pem"}, {verify, verify_peer},
           {server_name_indication, disable}, {secure_renegotiate, true}]}].)");
    REQUIRE(r.ok());
    CHECK(r.options.has_server);
    CHECK(r.options.server.certfile == "/app/certs/node.pem");
    CHECK(r.options.server.keyfile == "/app/certs/node.key");
    CHECK(r.options.server.cacertfile == "/app/certs/ca.pem");
    CHECK(r.options.server.verify == Verify::kPeer);
    CHECK(r.options.server.fail_if_no_peer_cert);
    CHECK(r.options.client.sni == Sni::kDisable);
    CHECK(r.options.client.verify == Verify::kPeer);
  }

  TEST_CASE("every supported option reads; no_effect lists the BEAM-only ones") {
    const auto r = parse_optfile(R"([{server, [{certfile, <<"/c.pem">>}, {depth, 3}, {versions, ['tlsv1.3']},
        {ciphers, ["TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"]},
        {honor_cipher_order, true}, {reuse_sessions, false}, {dhfile, "/dh.pem"}, {password, ""},
        {verify_fun, {fun inet_tls_dist:verify_client/3, []}}, {ktls, false}, {crl_check, false},
        {hibernate_after, 1000}, {log_level, notice}, {erl_dist, true}]},
      {client, [{server_name_indication, "node.example"}, {reuse_sessions, save}, {log_alert, false}]}].)");
    INFO(r.error);
    REQUIRE(r.ok());
    const auto& s = r.options.server;
    CHECK(s.certfile == "/c.pem");
    CHECK(s.depth == 3);
    CHECK(s.versions == std::vector<std::string>{"tlsv1.3"});
    CHECK(s.ciphers == std::vector<std::string>{"TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256",
                                                "ECDHE-RSA-AES128-GCM-SHA256"});
    CHECK(s.honor_cipher_order);
    CHECK_FALSE(s.reuse_sessions);
    CHECK(s.verify_client_fun);
    CHECK(s.no_effect == std::vector<std::string>{"hibernate_after", "log_level"});
    CHECK(r.options.client.sni == Sni::kName);
    CHECK(r.options.client.sni_name == "node.example");
    CHECK(r.options.client.no_effect == std::vector<std::string>{"log_alert"});
  }

  TEST_CASE("an option chat-node does not support is an error that names it") {
    CHECK(parse_optfile("[{server, [{psk_identity, \"x\"}]}].").error.find("{server, [...]}: psk_identity: not supported") == 0);
    CHECK(parse_optfile("[{client, [{fail_if_no_peer_cert, true}]}].").error ==
          "{client, [...]}: fail_if_no_peer_cert: is a server option (ssl refuses it here too)");
    CHECK(parse_optfile("[{server, [{server_name_indication, disable}]}].").error ==
          "{server, [...]}: server_name_indication: is a client option (ssl refuses it here too)");
    CHECK(parse_optfile("[{server, [{versions, ['tlsv1.1']}]}].").error ==
          "{server, [...]}: versions: 'tlsv1.1' is not supported (TLS 1.2 and 1.3 only)");
    CHECK(parse_optfile("[{server, [{secure_renegotiate, false}]}].").error ==
          "{server, [...]}: secure_renegotiate: false (insecure legacy renegotiation) is not supported");
    CHECK(parse_optfile("[{server, [{verify, maybe_peer}]}].").error ==
          "{server, [...]}: verify: expected verify_peer or verify_none, got maybe_peer");
    CHECK(parse_optfile("[{server, [{certfile, 42}]}].").error ==
          "{server, [...]}: certfile: expected a string, got 42");
    CHECK(parse_optfile("[{server, [{depth, 1}, {depth, 2}]}].").error == "{server, [...]}: depth is given twice");
    CHECK(parse_optfile("[{server, [{verify_fun, {fun my:check/3, []}}]}].").error ==
          "{server, [...]}: verify_fun: only {fun inet_tls_dist:verify_client/3, _} on the server side is supported");
    CHECK(parse_optfile("[{server, [{ciphers, [#{cipher => aes_128_gcm}]}]}].").error.find("only cipher names") !=
          std::string::npos);
    CHECK(parse_optfile("[{server, [{ktls, true}]}].").error == "{server, [...]}: ktls: true is not supported (no kernel TLS here)");
    CHECK(parse_optfile("[{server, []}, {server, []}].").error == "server options are given twice");
    CHECK(parse_optfile("[{other, []}].").error == "expected {server, [...]} or {client, [...]}, got {other, []}");
    CHECK(parse_optfile("{server, []}.").error == "expected a list [{server, [...]}, {client, [...]}], got {server, []}");
    CHECK(parse_optfile("[]. []."). error == "more than one term in the file (expected one list ending with '.')");
    CHECK(parse_optfile("% nothing\n").error == "no term in the file (expected [{server, [...]}, {client, [...]}].)");
    CHECK(parse_optfile("[{server, [{certfile, \"a\"}]}").error == "line 1: expected ']', found the end of the text");
  }

  TEST_CASE("render_optfile writes what parse_optfile reads back") {
    const auto r = parse_optfile(render_optfile("/d/node.pem", "/d/\"node\".key", "/d/ca.pem"));
    INFO(r.error);
    REQUIRE(r.ok());
    CHECK(r.options.server.keyfile == "/d/\"node\".key");
    CHECK(r.options.server.fail_if_no_peer_cert);
    CHECK(r.options.client.verify == Verify::kPeer);
    CHECK(r.options.client.sni == Sni::kNodeHost);
  }

  TEST_CASE("start-up errors name the file or option at fault") {
    test::TempDir dir;
    const auto& id = pki().node("127.0.0.1");
    SideOptions o;
    o.certfile = dir.path + "/missing.pem";
    CHECK(build_error(o, Side::kServer) == "certfile " + o.certfile + ": No such file or directory");
    o.certfile = dir.write("garbage.pem", "not a certificate\n");
    CHECK(build_error(o, Side::kServer).find("certfile " + o.certfile + ": no PEM certificate in it") == 0);
    o.certfile = dir.write("node.pem", id.cert_pem);
    o.keyfile = dir.write("other.key", pki().node("127.0.0.1").key_pem);
    CHECK(build_error(o, Side::kServer).find("keyfile " + o.keyfile + " does not match certfile " + o.certfile) == 0);
    o.keyfile = dir.write("node.key", id.key_pem);
    CHECK(build_error(o, Side::kServer).empty());  // verify_none: a server's default
    o.verify = Verify::kPeer;
    CHECK(build_error(o, Side::kServer) ==
          "server: verify_peer needs cacertfile (the CAs whose certificates to accept)");
    o.cacertfile = dir.path + "/nope.pem";
    CHECK(build_error(o, Side::kServer) == "cacertfile " + o.cacertfile + ": No such file or directory");
    o.cacertfile = dir.write("ca.pem", pki().ca.cert_pem);
    CHECK(build_error(o, Side::kServer).empty());
    o.ciphers = {"NOT-A-CIPHER"};
    CHECK(build_error(o, Side::kServer) == "server: ciphers: unknown cipher \"NOT-A-CIPHER\"");
    o.ciphers = {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"};  // RFC names
    CHECK(build_error(o, Side::kServer).empty());
    SideOptions client;
    CHECK(build_error(client, Side::kClient).find("client: verify_peer needs cacertfile") == 0);
    client.verify = Verify::kNone;
    CHECK(build_error(client, Side::kClient).empty());
    SideOptions none;
    CHECK(build_error(none, Side::kServer) == "server: no certfile (a TLS server needs a certificate)");
    SideOptions both;
    both.cert_pem = id.cert_pem;
    both.key_pem = id.key_pem;
    both.fail_if_no_peer_cert = true;
    CHECK(build_error(both, Side::kServer) == "server: fail_if_no_peer_cert needs {verify, verify_peer}");
  }

  TEST_CASE("mutual TLS 1.3 and 1.2: the handshake completes and data crosses both ways, in any split") {
    for (const char* version : {"tlsv1.3", "tlsv1.2"}) {
      for (size_t step : {size_t{1}, size_t{5}, size_t{333}, size_t{1} << 20U}) {
        CAPTURE(version);
        CAPTURE(step);
        auto c = side(pki().node("client.example"), pki().ca, false);
        auto s = side(pki().node("127.0.0.1"), pki().ca, true);
        c.versions = {version};
        Pair p = connect(c, s, "127.0.0.1", step);
        REQUIRE(p.client->established());
        REQUIRE(p.server->established());
        CHECK(p.client->summary().find(std::string(version) == "tlsv1.3" ? "TLSv1.3" : "TLSv1.2") == 0);
        CHECK(p.server->summary().find("CN=client.example") != std::string::npos);
        REQUIRE(p.client->write(std::string_view("\0\0\0\x05hello", 9)));
        REQUIRE(p.server->write("world"));
        pump(p, step, 3);
        CHECK(p.to_server == std::string("\0\0\0\x05hello", 9));
        CHECK(p.to_client == "world");
      }
    }
  }

  TEST_CASE("a megabyte goes through in records and comes out whole") {
    Pair p = connect(side(pki().node("a"), pki().ca, false), side(pki().node("127.0.0.1"), pki().ca, true));
    std::string big(1U << 20U, '\0');
    std::mt19937 rng(7);
    for (auto& ch : big) ch = static_cast<char>(rng());
    REQUIRE(p.client->write(big));
    CHECK(p.client->output_size() > big.size());
    pump(p, 65536, 100000);
    CHECK(p.to_server == big);
  }

  TEST_CASE("a sink takes records while the output is empty; what it leaves follows in order") {
    Pair p = connect(side(pki().node("a"), pki().ca, false), side(pki().node("127.0.0.1"), pki().ca, true));
    // Takes 40,000 bytes, as a socket that fills up part way through a record would.
    struct Socket {
      std::string took;
      static size_t take(void* ctx, std::string_view records) {
        auto* self = static_cast<Socket*>(ctx);
        const size_t k = std::min(records.size(), size_t{40000} - self->took.size());
        self->took.append(records.substr(0, k));
        return k;
      }
    } socket;
    std::string big(200000, '\0');
    std::mt19937 rng(11);
    for (auto& ch : big) ch = static_cast<char>(rng());
    p.client->set_sink({&Socket::take, &socket});
    REQUIRE(p.client->write(big));
    p.client->set_sink({});
    CHECK(socket.took.size() == 40000);
    CHECK(p.client->output_size() > big.size() - 40000);
    std::string rest;
    p.client->take_output(rest);
    // The socket's bytes first, then the output: one stream of records.
    const std::string wire = socket.took + rest;
    std::string buf(16384, '\0');
    p.server->feed(wire);
    for (;;) {
      const auto r = p.server->read(buf);
      if (r.status != Session::Status::kData) break;
      p.to_server.append(buf.data(), r.n);
    }
    p.server->end_feed();
    CHECK(p.to_server == big);
  }

  TEST_CASE("refusals: another CA, expired, no certificate, the wrong host") {
    const auto expect_failure = [](Pair& p, const std::string& client_error, const std::string& server_error) {
      CHECK_FALSE((p.client->established() && p.server->established() && !p.client->failed() && !p.server->failed()));
      INFO("client: " << p.client->error() << " / server: " << p.server->error());
      if (!client_error.empty()) CHECK(p.client->error().find(client_error) != std::string::npos);
      if (!server_error.empty()) CHECK(p.server->error().find(server_error) != std::string::npos);
    };
    SUBCASE("the server's certificate is from another CA") {
      const auto rogue = issue_node_cert(pki().other_ca.cert_pem, pki().other_ca.key_pem, {"127.0.0.1"}, {});
      Pair p = connect(side(pki().node("a"), pki().ca, false), side(rogue, pki().other_ca, false));
      expect_failure(p, "certificate verify failed: unable to get local issuer certificate", "unknown ca");
    }
    SUBCASE("the client's certificate is from another CA") {
      const auto rogue = issue_node_cert(pki().other_ca.cert_pem, pki().other_ca.key_pem, {"a"}, {});
      Pair p = connect(side(rogue, pki().ca, false), side(pki().node("127.0.0.1"), pki().ca, true));
      pump(p);
      expect_failure(p, "unknown ca", "certificate verify failed: unable to get local issuer certificate");
    }
    SUBCASE("the server's certificate has expired") {
      const auto old = pki().node("127.0.0.1", {-10 * kDay, -1 * kDay});
      Pair p = connect(side(pki().node("a"), pki().ca, false), side(old, pki().ca, true));
      expect_failure(p, "certificate has expired (depth 0", "certificate expired");
    }
    SUBCASE("the client has no certificate") {
      SideOptions c;
      c.cacert_pem = pki().ca.cert_pem;
      Pair p = connect(c, side(pki().node("127.0.0.1"), pki().ca, true));
      pump(p);
      expect_failure(p, "certificate required", "peer did not return a certificate");
    }
    SUBCASE("the server's certificate names another host") {
      Pair p = connect(side(pki().node("a"), pki().ca, false), side(pki().node("10.0.0.9"), pki().ca, true));
      expect_failure(p, "the certificate does not name host 127.0.0.1", "");
    }
  }

  TEST_CASE("the host name check: DNS or IP entries, or none with server_name_indication disable") {
    auto c = side(pki().node("a"), pki().ca, false);
    const auto s = side(pki().node("10.1.2.3"), pki().ca, true);
    CHECK(connect(c, s, "10.1.2.3").client->established());
    // An IP address entry alone passes too (OTP 27 and later fall back to it).
    const auto ip_only = issue_node_cert(pki().ca.cert_pem, pki().ca.key_pem, {"n.example"}, {});
    CHECK_FALSE(certificate_names_host(ip_only.cert_pem, "10.1.2.3"));
    CHECK(certificate_names_host(pki().node("10.1.2.3").cert_pem, "10.1.2.3"));
    CHECK(connect(c, side(ip_only, pki().ca, true), "n.example").client->established());
    c.sni = Sni::kDisable;
    CHECK(connect(c, s, "somewhere.else").client->established());
    c.sni = Sni::kName;
    c.sni_name = "10.1.2.3";
    CHECK(connect(c, s, "somewhere.else").client->established());
  }

  TEST_CASE("a plain TCP distribution peer on a TLS port gets a clear error, garbage too") {
    Pair p;
    p.server = context(side(pki().node("127.0.0.1"), pki().ca, true), Side::kServer)->server_session();
    // send_name of a BEAM: 2-byte length, 'N', flags...
    const std::string send_name("\x00\x15N\x00\x00\x00\x0d\x07\xdf\x7f\xbd", 11);
    p.server->feed(send_name);
    std::string buf(100, '\0');
    CHECK(p.server->read(buf).status == Session::Status::kFailed);
    CHECK(p.server->error().find("plain TCP distribution") != std::string::npos);
    auto garbage = context(side(pki().node("127.0.0.1"), pki().ca, true), Side::kServer)->server_session();
    std::mt19937 rng(1);
    std::string junk(4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    junk[0] = 0x16;  // looks like a handshake record, then nonsense
    garbage->feed(junk);
    CHECK(garbage->read(buf).status == Session::Status::kFailed);
    CHECK_FALSE(garbage->error().empty());
  }

  TEST_CASE("close_notify ends the session cleanly") {
    Pair p = connect(side(pki().node("a"), pki().ca, false), side(pki().node("127.0.0.1"), pki().ca, true));
    p.client->shutdown();
    pump(p);
    CHECK(p.server_closed);
  }

  TEST_CASE("certificates issued for a node: a DNS entry for the host, an IP entry for an address") {
    const auto id = pki().node("10.0.4.7");
    CHECK(certificate_names_host(id.cert_pem, "10.0.4.7"));
    CHECK_FALSE(certificate_names_host(id.cert_pem, "10.0.4.8"));
    CHECK_THROWS_WITH_AS(issue_node_cert(pki().ca.cert_pem, pki().other_ca.key_pem, {"h"}, {}),
                         "the CA key does not belong to the CA certificate", std::runtime_error);
    // While a CA is rotated the PEM holds both certificates: the one the key belongs to signs.
    const auto both = pki().other_ca.cert_pem + pki().ca.cert_pem;
    const auto rotated = issue_node_cert(both, pki().ca.key_pem, {"h"}, {});
    SideOptions trusting_old;
    trusting_old.cacert_pem = pki().ca.cert_pem;
    trusting_old.verify = Verify::kPeer;
    CHECK(connect(trusting_old, side(rotated, pki().ca, false), "h").client->established());
  }
}
