#include "auth/pki.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace fleetcore::auth {
namespace {

[[noreturn]] void fail(const std::string& what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  throw std::runtime_error(what + ": " + buf);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) fail("x509 extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

FILE* open_with_mode(const std::filesystem::path& path, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + path.string());
  ::fchmod(fd, mode);
  FILE* f = ::fdopen(fd, "w");
  if (!f) {
    ::close(fd);
    throw std::runtime_error("cannot write " + path.string());
  }
  return f;
}

}  // namespace

pkey_ptr generate_ec_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC key generation");
  return key;
}

x509_ptr make_certificate(const cert_request& req, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  x509_ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7F;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(req.days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("fleetcore"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(req.common_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (req.is_ca) {
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
    add_ext(cert.get(), issuer, NID_ext_key_usage, req.server ? "serverAuth" : "clientAuth");
  }
  add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& d : req.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : req.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) add_ext(cert.get(), issuer, NID_subject_alt_name, san);
  if (!X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256())) fail("certificate signing");
  return cert;
}

void write_key(const std::filesystem::path& path, EVP_PKEY* key) {
  FILE* f = open_with_mode(path, 0600);
  bool ok = PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  if (!ok) fail("write key " + path.string());
}

void write_cert(const std::filesystem::path& path, X509* cert) {
  FILE* f = open_with_mode(path, 0644);
  bool ok = PEM_write_X509(f, cert) == 1;
  std::fclose(f);
  if (!ok) fail("write certificate " + path.string());
}

pkey_ptr read_key(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read " + path.string());
  pkey_ptr k(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!k) fail("read key " + path.string());
  return k;
}

x509_ptr read_cert(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read " + path.string());
  x509_ptr c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!c) fail("read certificate " + path.string());
  return c;
}

dev_pki ensure_dev_pki(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  dev_pki p{dir / "ca.crt", dir / "ca.key", dir / "server.crt", dir / "server.key"};
  if (!std::filesystem::exists(p.ca_cert) || !std::filesystem::exists(p.ca_key)) {
    auto key = generate_ec_key();
    auto cert = make_certificate({"fleetcore development CA", {}, {}, 3650, true, false}, key.get(), nullptr, nullptr);
    write_key(p.ca_key, key.get());
    write_cert(p.ca_cert, cert.get());
    std::filesystem::remove(p.server_cert);
  }
  if (!std::filesystem::exists(p.server_cert) || !std::filesystem::exists(p.server_key)) {
    auto ca_key = read_key(p.ca_key);
    auto ca = read_cert(p.ca_cert);
    auto key = generate_ec_key();
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    cert_request req{"localhost", {"localhost", host}, {"127.0.0.1", "::1"}, 825, false, true};
    auto cert = make_certificate(req, key.get(), ca.get(), ca_key.get());
    write_key(p.server_key, key.get());
    write_cert(p.server_cert, cert.get());
  }
  return p;
}

void issue_client_cert(const dev_pki& pki, const std::string& common_name, const std::filesystem::path& out, int days) {
  std::filesystem::create_directories(out);
  auto ca_key = read_key(pki.ca_key);
  auto ca = read_cert(pki.ca_cert);
  auto key = generate_ec_key();
  auto cert = make_certificate({common_name, {}, {}, days, false, false}, key.get(), ca.get(), ca_key.get());
  write_key(out / (common_name + ".key"), key.get());
  write_cert(out / (common_name + ".crt"), cert.get());
}

}  // namespace fleetcore::auth
