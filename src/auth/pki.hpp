#pragma once
// X.509 material: ECDSA P-256 (or RSA) keys, the built-in private CA, certificates it signs, and
// what the certificate registry reads from certificates. Keys are written with mode 0600.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
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
/// A new RSA key of `bits` bits.
pkey_ptr generate_rsa_key(int bits = 2048);

struct cert_request {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  int days = 365;
  bool is_ca = false;
  bool server = false;  // extendedKeyUsage serverAuth, else clientAuth
  long seconds = 0;     // when > 0, the validity in seconds instead of `days` (temporary claim certificates)
};

/// A certificate for `key` signed by `issuer`/`issuer_key`; self-signed when `issuer` is null.
x509_ptr make_certificate(const cert_request& req, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key);

/// What a writer does when the file already exists.
enum class existing { replace, refuse };

/// PEM to `path` through `<path>.tmp`, fsync and rename, so a crash leaves the old file or the whole
/// new one: keys with mode 0600, certificates 0644. With `existing::refuse` an existing file is kept
/// and std::runtime_error thrown. Throws std::runtime_error naming the file on I/O failure.
void write_key(const std::filesystem::path& path, EVP_PKEY* key, existing what = existing::replace);
void write_cert(const std::filesystem::path& path, X509* cert, existing what = existing::replace);
/// Any secret (`content`) to `path` the same way, mode 0600, replacing it.
void write_private_file(const std::filesystem::path& path, std::string_view content);
/// Throw std::runtime_error naming the file if it cannot be read or holds no PEM key/certificate.
pkey_ptr read_key(const std::filesystem::path& path);
x509_ptr read_cert(const std::filesystem::path& path);

std::string to_pem(X509* cert);
std::string private_key_pem(EVP_PKEY* key);
std::string public_key_pem(EVP_PKEY* key);

/// The first certificate of a PEM text, or null if there is none or it does not parse.
x509_ptr parse_pem_cert(std::string_view pem);

/// AWS IoT's certificate id: the lowercase hex SHA-256 of the DER encoding.
std::string certificate_id(X509* cert);

/// What the registry and the policy variables need to know of a certificate.
struct cert_facts {
  std::string subject;  // RFC 2253
  std::string issuer;   // RFC 2253
  std::int64_t not_before = 0;  // seconds since the epoch
  std::int64_t not_after = 0;
  std::string serial;  // uppercase hex
  bool is_ca = false;
  /// Policy variables without the "iot:Certificate." prefix: Subject.CommonName, Issuer.Organization,
  /// SerialNumber, Validity.NotBefore, SubjectAlternativeName.DNSName ...
  std::vector<std::pair<std::string, std::string>> variables;
};
cert_facts facts_of(X509* cert);

/// True if `cert` names `issuer` as its issuer and carries a valid signature by its key.
bool issued_by(X509* cert, X509* issuer);

/// Signs the PEM certificate signing request `csr_pem` (after checking its self-signature) as a
/// client certificate with the CSR's subject and key. Null with `error` set if the CSR is invalid.
x509_ptr sign_csr(std::string_view csr_pem, X509* ca, EVP_PKEY* ca_key, int days, std::string& error);

/// A PEM certificate signing request for `key` with subject `O=fleetcore, CN=<common_name>`, signed by
/// `key`. Throws std::runtime_error on OpenSSL failure.
std::string make_csr(EVP_PKEY* key, const std::string& common_name);
/// The SHA-256 (hex) of the public key (SubjectPublicKeyInfo DER) of a PEM CSR or certificate; empty
/// if it is neither.
std::string public_key_digest(std::string_view pem);

/// Serial numbers (uppercase hex) revoked by the PEM CRL `crl_pem`, whose signature must verify
/// with `issuer`'s key; nullopt with `error` set otherwise.
std::optional<std::vector<std::string>> revoked_serials(std::string_view crl_pem, X509* issuer, std::string& error);

/// The development PKI in `dir`: a CA and a server certificate for localhost/127.0.0.1, created on first
/// use. The CA is created only when neither ca.crt nor ca.key exists (warning `pki.ca_created`); when
/// exactly one exists, when either does not parse, or when they are not a pair, this throws
/// std::runtime_error naming the file and writes nothing, since a new CA would orphan every device
/// certificate the old one issued. A missing or unusable server pair (empty, not a pair, not issued by
/// the CA) is issued again. Throws std::runtime_error on I/O or OpenSSL failure.
struct dev_pki {
  std::filesystem::path ca_cert, ca_key, server_cert, server_key;
};
/// `key_type` ("ec" or "rsa") is used when the CA is first created.
dev_pki ensure_dev_pki(const std::filesystem::path& dir, std::string_view key_type = "ec");

/// Issues a client certificate with CN `common_name` signed by the CA of `pki`, writing
/// `<out>/<name>.crt` and `<out>/<name>.key`.
void issue_client_cert(const dev_pki& pki, const std::string& common_name, const std::filesystem::path& out,
                       int days = 365);

}  // namespace fleetcore::auth
