#include "auth/pki.hpp"

#include "common/hex.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "common/log.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
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

/// An unsigned v3 certificate for `key`: random positive 127-bit serial, valid from an hour ago
/// (clock skew) for `days`.
x509_ptr new_certificate(EVP_PKEY* key, long validity_seconds) {
  x509_ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7F;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), validity_seconds);
  X509_set_pubkey(cert.get(), key);
  return cert;
}

std::runtime_error write_error(const std::filesystem::path& path, const char* op, int err) {
  return std::runtime_error("cannot write " + path.string() + ": " + op + ": " + std::strerror(err));
}

/// The first half of an atomic write: `<path>.tmp` holds `pem` with `mode`, synced to disk.
std::filesystem::path stage_file(const std::filesystem::path& path, std::string_view pem, mode_t mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw write_error(path, "open", errno);
  ::fchmod(fd, mode);  // the umask may have narrowed it
  auto fail_with = [&](const char* op) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return write_error(path, op, err);
  };
  for (std::size_t done = 0; done < pem.size();) {
    ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw fail_with("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) throw fail_with("fsync");
  ::close(fd);
  return tmp;
}

/// The second half: `tmp` becomes `path` in one step (rename, or link, which keeps an existing file,
/// for `existing::refuse`), and the directory entry is synced.
void commit_file(const std::filesystem::path& tmp, const std::filesystem::path& path, existing what) {
  if (what == existing::replace) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw write_error(path, "rename", errno);
  } else {
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      if (err == EEXIST) throw std::runtime_error("refusing to overwrite " + path.string() + ": it already exists");
      throw write_error(path, "link", err);
    }
    ::unlink(tmp.c_str());
  }
  std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace

pkey_ptr generate_ec_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC key generation");
  return key;
}

pkey_ptr generate_rsa_key(int bits) {
  pkey_ptr key(EVP_RSA_gen(static_cast<unsigned>(bits)));
  if (!key) fail("RSA key generation");
  return key;
}

namespace {

struct bio_deleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

std::string drain(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

bio_ptr read_bio(std::string_view text) {
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string name_string(X509_NAME* name) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  return drain(bio.get());
}

std::int64_t epoch_of(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string serial_hex(const ASN1_INTEGER* serial) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  char* hex = BN_bn2hex(bn);
  std::string s = hex ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return s;
}

void add_name_variables(X509_NAME* name, const std::string& prefix,
                        std::vector<std::pair<std::string, std::string>>& out) {
  static const std::pair<int, const char*> fields[] = {
      {NID_commonName, "CommonName"},     {NID_countryName, "Country"},
      {NID_organizationName, "Organization"}, {NID_organizationalUnitName, "OrganizationalUnit"},
      {NID_stateOrProvinceName, "State"}, {NID_localityName, "Locality"},
      {NID_serialNumber, "SerialNumber"}, {NID_dnQualifier, "DistinguishedNameQualifier"},
      {NID_title, "Title"},               {NID_surname, "Surname"},
      {NID_givenName, "GivenName"},       {NID_initials, "Initials"},
      {NID_pseudonym, "Pseudonym"},       {NID_generationQualifier, "GenerationQualifier"},
  };
  for (auto [nid, label] : fields) {
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) continue;
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len >= 0) out.emplace_back(prefix + label, std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len)));
    OPENSSL_free(utf8);
  }
}

}  // namespace

std::string to_pem(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return drain(bio.get());
}

std::string private_key_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return drain(bio.get());
}

std::string public_key_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  return drain(bio.get());
}

std::string public_key_digest(std::string_view pem) {
  EVP_PKEY* key = nullptr;  // owned by the request or certificate it came from
  auto bio = read_bio(pem);
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr),
                                                          X509_REQ_free);
  x509_ptr cert;
  if (req) key = X509_REQ_get0_pubkey(req.get());
  else if ((cert = parse_pem_cert(pem))) key = X509_get0_pubkey(cert.get());
  ERR_clear_error();
  if (!key) return {};
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key, &der);
  if (n <= 0) return {};
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<std::size_t>(n), md);
  OPENSSL_free(der);
  return common::hex(md, sizeof md);
}

x509_ptr parse_pem_cert(std::string_view pem) {
  auto bio = read_bio(pem);
  x509_ptr c(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return c;
}

std::string certificate_id(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  return common::hex(md, n);
}

cert_facts facts_of(X509* cert) {
  cert_facts f;
  f.subject = name_string(X509_get_subject_name(cert));
  f.issuer = name_string(X509_get_issuer_name(cert));
  f.not_before = epoch_of(X509_get0_notBefore(cert));
  f.not_after = epoch_of(X509_get0_notAfter(cert));
  f.serial = serial_hex(X509_get0_serialNumber(cert));
  f.is_ca = X509_check_ca(cert) != 0;
  add_name_variables(X509_get_subject_name(cert), "Subject.", f.variables);
  add_name_variables(X509_get_issuer_name(cert), "Issuer.", f.variables);
  f.variables.emplace_back("SerialNumber", f.serial);
  f.variables.emplace_back("Validity.NotBefore", std::to_string(f.not_before * 1000));
  f.variables.emplace_back("Validity.NotAfter", std::to_string(f.not_after * 1000));
  if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      const char* label = g->type == GEN_DNS ? "DNSName" : g->type == GEN_EMAIL ? "RFC822Name" : g->type == GEN_URI ? "UniformResourceIdentifier" : nullptr;
      if (!label) continue;
      const ASN1_STRING* v = g->d.ia5;
      f.variables.emplace_back(std::string("Subject.AlternativeName.") + label,
                               std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                                           static_cast<std::size_t>(ASN1_STRING_length(v))));
    }
    GENERAL_NAMES_free(sans);
  }
  return f;
}

bool issued_by(X509* cert, X509* issuer) {
  if (X509_check_issued(issuer, cert) != X509_V_OK) return false;
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  bool ok = key && X509_verify(cert, key) == 1;
  ERR_clear_error();
  return ok;
}

x509_ptr sign_csr(std::string_view csr_pem, X509* ca, EVP_PKEY* ca_key, int days, std::string& error) {
  auto bio = read_bio(csr_pem);
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> csr(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr),
                                                          &X509_REQ_free);
  ERR_clear_error();
  if (!csr) {
    error = "certificateSigningRequest is not a PEM certificate signing request";
    return nullptr;
  }
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr.get());
  if (!key || X509_REQ_verify(csr.get(), key) != 1) {
    ERR_clear_error();
    error = "the signature of the certificate signing request does not verify";
    return nullptr;
  }
  x509_ptr cert = new_certificate(key, static_cast<long>(days) * 86400);
  X509_set_subject_name(cert.get(), X509_REQ_get_subject_name(csr.get()));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  add_ext(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), ca, NID_key_usage, "critical,digitalSignature");
  add_ext(cert.get(), ca, NID_ext_key_usage, "clientAuth");
  add_ext(cert.get(), ca, NID_authority_key_identifier, "keyid:always");
  if (!X509_sign(cert.get(), ca_key, EVP_sha256())) fail("certificate signing");
  return cert;
}

std::string make_csr(EVP_PKEY* key, const std::string& common_name) {
  std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)> req(X509_REQ_new(), &X509_REQ_free);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("fleetcore"), -1, -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key) != 1 || X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0)
    fail("certificate signing request for " + common_name);
  bio_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  return drain(bio.get());
}

std::optional<std::vector<std::string>> revoked_serials(std::string_view crl_pem, X509* issuer, std::string& error) {
  auto bio = read_bio(crl_pem);
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr),
                                                          &X509_CRL_free);
  ERR_clear_error();
  if (!crl) {
    error = "not a PEM certificate revocation list";
    return std::nullopt;
  }
  EVP_PKEY* key = X509_get0_pubkey(issuer);
  if (!key || X509_CRL_verify(crl.get(), key) != 1) {
    ERR_clear_error();
    error = "the CRL is not signed by this CA";
    return std::nullopt;
  }
  std::vector<std::string> serials;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i)
    serials.push_back(serial_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i))));
  return serials;
}

x509_ptr make_certificate(const cert_request& req, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  x509_ptr cert = new_certificate(key, req.seconds > 0 ? req.seconds : static_cast<long>(req.days) * 86400);
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

void write_key(const std::filesystem::path& path, EVP_PKEY* key, existing what) {
  commit_file(stage_file(path, private_key_pem(key), 0600), path, what);
}

void write_private_file(const std::filesystem::path& path, std::string_view content) {
  commit_file(stage_file(path, content, 0600), path, existing::replace);
}

void write_cert(const std::filesystem::path& path, X509* cert, existing what) {
  commit_file(stage_file(path, to_pem(cert), 0644), path, what);
}

pkey_ptr read_key(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
  pkey_ptr k(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!k) fail(path.string() + " is not a PEM private key");
  return k;
}

x509_ptr read_cert(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) throw std::runtime_error("cannot read " + path.string() + ": " + std::strerror(errno));
  x509_ptr c(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!c) fail(path.string() + " is not a PEM certificate");
  return c;
}

namespace {

/// Why the server pair in `p` cannot serve, or empty if it can: both files parse, the key is the
/// certificate's, and the certificate is issued by `ca`.
std::string server_pair_problem(const dev_pki& p, X509* ca) {
  for (const auto& f : {p.server_cert, p.server_key})
    if (!std::filesystem::exists(f)) return f.filename().string() + " missing";
  try {
    auto cert = read_cert(p.server_cert);
    auto key = read_key(p.server_key);
    if (X509_check_private_key(cert.get(), key.get()) != 1) return "server.key does not match server.crt";
    if (!issued_by(cert.get(), ca)) return "server.crt not issued by ca.crt";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ERR_clear_error();
  return {};
}

}  // namespace

dev_pki ensure_dev_pki(const std::filesystem::path& dir, std::string_view key_type) {
  std::filesystem::create_directories(dir);
  ::chmod(dir.c_str(), 0700);
  dev_pki p{dir / "ca.crt", dir / "ca.key", dir / "server.crt", dir / "server.key"};
  bool has_cert = std::filesystem::exists(p.ca_cert), has_key = std::filesystem::exists(p.ca_key);
  if (has_key && !has_cert) {
    // A first start killed between the two renames of the CA's creation left the complete
    // certificate beside its key: finish the creation.
    std::filesystem::path tmp = p.ca_cert;
    tmp += ".tmp";
    try {
      if (std::filesystem::exists(tmp) && X509_check_private_key(read_cert(tmp).get(), read_key(p.ca_key).get()) == 1) {
        std::filesystem::rename(tmp, p.ca_cert);
        has_cert = true;
        FC_LOG_WARN("pki.ca_recovered", "cert={} key={}", p.ca_cert.string(), p.ca_key.string());
      }
    } catch (const std::runtime_error&) {
    }
    ERR_clear_error();
  }
  if (has_cert != has_key) {
    const auto& missing = has_cert ? p.ca_key : p.ca_cert;
    const auto& present = has_cert ? p.ca_cert : p.ca_key;
    throw std::runtime_error(
        missing.string() + " is missing but " + present.string() +
        " exists: refusing to create a new CA, which would orphan every certificate the old one issued. "
        "Restore " + missing.filename().string() + " from the backup of " + present.filename().string() +
        ", or move both away to start with a new CA");
  }
  x509_ptr ca;
  pkey_ptr ca_key;
  if (!has_cert) {
    ca_key = key_type == "rsa" ? generate_rsa_key(3072) : generate_ec_key();
    ca = make_certificate({"fleetcore development CA", {}, {}, 3650, true, false}, ca_key.get(), nullptr, nullptr);
    // Both staged before either appears, so a kill between the two commits leaves a ca.crt.tmp that
    // the next start completes (above).
    auto cert_tmp = stage_file(p.ca_cert, to_pem(ca.get()), 0644);
    commit_file(stage_file(p.ca_key, private_key_pem(ca_key.get()), 0600), p.ca_key, existing::refuse);
    commit_file(cert_tmp, p.ca_cert, existing::refuse);
    FC_LOG_WARN("pki.ca_created",
                "cert={} key={} key_type={} note=\"a new root CA: devices must trust this ca.crt; back up ca.crt "
                "and ca.key together\"",
                p.ca_cert.string(), p.ca_key.string(), key_type);
  } else {
    ca = read_cert(p.ca_cert);
    ca_key = read_key(p.ca_key);
    if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
      ERR_clear_error();
      throw std::runtime_error(p.ca_key.string() + " is not the key of " + p.ca_cert.string() +
                               ": restore both from the same backup");
    }
  }
  // The server pair is derived: the CA signs it, so when it is missing or unusable (an interrupted
  // first start, a new CA) it is issued again rather than refused.
  if (auto problem = server_pair_problem(p, ca.get()); !problem.empty()) {
    auto key = generate_ec_key();
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    cert_request req{"localhost", {"localhost", host}, {"127.0.0.1", "::1"}, 825, false, true};
    auto cert = make_certificate(req, key.get(), ca.get(), ca_key.get());
    write_key(p.server_key, key.get());
    write_cert(p.server_cert, cert.get());
    if (has_cert)
      FC_LOG_WARN("pki.server_cert_created", "cert={} key={} reason={:q}", p.server_cert.string(), p.server_key.string(),
                  common::untrusted(problem));
    else
      FC_LOG_INFO("pki.server_cert_created", "cert={} key={}", p.server_cert.string(), p.server_key.string());
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
