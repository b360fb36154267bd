#include "transport/tls.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdexcept>

namespace fleetcore::transport {

namespace {

namespace ssl = boost::asio::ssl;

ssl::context base_context(const tls_files& files) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(files.cert.string(), ec);
  if (ec) throw std::runtime_error("cannot load TLS certificate " + files.cert.string() + ": " + ec.message());
  ctx.use_private_key_file(files.key.string(), ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot load TLS key " + files.key.string() + ": " + ec.message());
  // Idle TLS connections should not keep OpenSSL's read/write buffers.
  SSL_CTX_set_mode(ctx.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

/// OpenSSL's whole-chain verification replaced by the registry's check of the leaf: trust comes from
/// registered CAs and certificates, which change at run time. The handshake still proves that the
/// client holds the certificate's private key.
int verify_with_check(X509_STORE_CTX* store, void* arg) {
  const auto& check = *static_cast<const client_cert_check*>(arg);
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (leaf && check(leaf)) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

}  // namespace

ssl::context make_https_context(const tls_files& files) { return base_context(files); }

boost::asio::ssl::context make_server_context(const tls_files& files, const client_cert_check* check) {
  ssl::context ctx = base_context(files);
  boost::system::error_code ec;
  if (check) {
    SSL_CTX_set_cert_verify_callback(ctx.native_handle(), verify_with_check, const_cast<client_cert_check*>(check));
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    return ctx;
  }
  ctx.load_verify_file(files.client_ca.string(), ec);
  if (ec) throw std::runtime_error("cannot load client CA bundle " + files.client_ca.string() + ": " + ec.message());
  // Client certificates are required: this is the device identity.
  ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

peer_identity peer_of(SSL* ssl) {
  peer_identity id;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return id;
  X509_NAME* name = X509_get_subject_name(cert);
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    id.subject.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
  }
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx >= 0) {
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, s);
    if (len >= 0) id.common_name.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) == 1) {
    static const char* digits = "0123456789abcdef";
    for (unsigned i = 0; i < n; ++i) {
      id.certificate_id += digits[md[i] >> 4];
      id.certificate_id += digits[md[i] & 15];
    }
  }
  X509_free(cert);
  return id;
}

}  // namespace fleetcore::transport
