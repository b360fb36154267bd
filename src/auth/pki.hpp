#pragma once
// X.509 material: ECDSA P-256 keys, a private CA, and certificates it signs. Keys are written with
// mode 0600. The full certificate registry builds on this.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace fleetcore::auth {

struct pkey_deleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct x509_deleter {
  void operator()(X509* c) const noexcept { X509_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

/// A new ECDSA P-256 key.
pkey_ptr generate_ec_key();

struct cert_request {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  int days = 365;
  bool is_ca = false;
  bool server = false;  // extendedKeyUsage serverAuth, else clientAuth
};

/// A certificate for `key` signed by `issuer`/`issuer_key`; self-signed when `issuer` is null.
x509_ptr make_certificate(const cert_request& req, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key);

void write_key(const std::filesystem::path& path, EVP_PKEY* key);  // PEM, mode 0600
void write_cert(const std::filesystem::path& path, X509* cert);    // PEM, mode 0644
pkey_ptr read_key(const std::filesystem::path& path);
x509_ptr read_cert(const std::filesystem::path& path);

/// The development PKI in `dir`: a CA and a server certificate for localhost/127.0.0.1, created on first
/// use. Throws std::runtime_error on I/O or OpenSSL failure.
struct dev_pki {
  std::filesystem::path ca_cert, ca_key, server_cert, server_key;
};
dev_pki ensure_dev_pki(const std::filesystem::path& dir);

/// Issues a client certificate with CN `common_name` signed by the CA of `pki`, writing
/// `<out>/<name>.crt` and `<out>/<name>.key`.
void issue_client_cert(const dev_pki& pki, const std::string& common_name, const std::filesystem::path& out,
                       int days = 365);

}  // namespace fleetcore::auth
