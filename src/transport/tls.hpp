#pragma once
#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace fleetcore::transport {

struct tls_files {
  std::filesystem::path cert;       // server certificate chain (PEM)
  std::filesystem::path key;        // server private key (PEM)
  std::filesystem::path client_ca;  // CA bundle that client certificates must chain to (PEM)
};

/// Decides whether a client certificate (the leaf the client presented) is accepted, in place of
/// OpenSSL's chain verification; called on the connection's worker during the handshake.
using client_cert_check = std::function<bool(X509* leaf)>;

/// A TLS 1.2+ server context that requires a client certificate. With `check`, the certificate is
/// accepted if `check` says so; otherwise it must chain to `files.client_ca`. `check` must outlive
/// the context. Throws std::runtime_error naming the file that could not be loaded.
boost::asio::ssl::context make_server_context(const tls_files& files, const client_cert_check* check = nullptr);

/// A TLS 1.2+ server context for HTTPS without client certificates (the control-plane API).
boost::asio::ssl::context make_https_context(const tls_files& files);

/// Subject (RFC 2253) and common name of the verified peer certificate of `ssl`, empty if none.
struct peer_identity {
  std::string subject;
  std::string common_name;
  std::string certificate_id;
};
peer_identity peer_of(SSL* ssl);

}  // namespace fleetcore::transport
