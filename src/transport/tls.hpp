#pragma once
#include <boost/asio/ssl/context.hpp>

#include <filesystem>
#include <string>

namespace fleetcore::transport {

struct tls_files {
  std::filesystem::path cert;       // server certificate chain (PEM)
  std::filesystem::path key;        // server private key (PEM)
  std::filesystem::path client_ca;  // CA bundle that client certificates must chain to (PEM)
};

/// A TLS 1.2+ server context that requires and verifies a client certificate against
/// `files.client_ca`. Throws std::runtime_error naming the file that could not be loaded.
boost::asio::ssl::context make_server_context(const tls_files& files);

/// Subject (RFC 2253) and common name of the verified peer certificate of `ssl`, empty if none.
struct peer_identity {
  std::string subject;
  std::string common_name;
};
peer_identity peer_of(SSL* ssl);

}  // namespace fleetcore::transport
