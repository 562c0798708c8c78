#include "chat/tls/openssl.hpp"

#include "openssl_certs.hpp"
#include "openssl_context.hpp"

namespace chat::tls {

namespace {

class OpensslEngine final : public Engine {
 public:
  [[nodiscard]] std::shared_ptr<Context> context(const SideOptions& options, Side side) const override {
    return std::make_shared<openssl::OpensslContext>(options, side);
  }
  [[nodiscard]] Issued make_ca(const std::string& common_name, const Validity& validity) const override {
    return openssl::make_ca(common_name, validity);
  }
  [[nodiscard]] Issued issue_node_cert(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                                       const std::vector<std::string>& hosts, const Validity& validity) const override {
    return openssl::issue_node_cert(ca_cert_pem, ca_key_pem, hosts, validity);
  }
  [[nodiscard]] bool certificate_names_host(const std::string& pem, const std::string& host) const override {
    return openssl::certificate_names_host(pem, host);
  }
};

}  // namespace

const Engine& openssl_engine() {
  static const OpensslEngine engine;
  return engine;
}

}  // namespace chat::tls
