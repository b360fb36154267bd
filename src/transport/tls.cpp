#include "transport/tls.hpp"

#include "auth/pki.hpp"
#include "common/hex.hpp"
#include "common/log.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include <fstream>
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

/// `fn()`, or `failed` if it throws: no exception may unwind through OpenSSL's frames.
template <typename R, typename Fn>
R or_failed(R failed, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (...) {
    return failed;
  }
}

/// OpenSSL's whole-chain verification replaced by the registry's check of the leaf: trust comes from
/// registered CAs and certificates, which change at run time. The handshake still proves that the
/// client holds the certificate's private key.
int verify_with_check(X509_STORE_CTX* store, void* arg) {
  const auto& check = *static_cast<const client_cert_check*>(arg);
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (leaf && or_failed(false, [&] { return check(leaf); })) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

int tickets_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

const EVP_CIPHER* ticket_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  return cipher;
}

/// Seals (enc = 1) or opens (enc = 0) a session ticket with session_tickets' keys. Returns 1, 2 (opened
/// with a retired key: issue a fresh ticket), 0 (no such key: a full handshake) or -1 (error).
int seal_or_open(session_tickets& tickets, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                 EVP_MAC_CTX* mac, bool enc) {
  session_tickets::key k;
  int result = 1;
  if (enc) {
    k = tickets.sealing_key();
    std::memcpy(name, k.name.data(), k.name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(ticket_cipher())) != 1 ||
        EVP_EncryptInit_ex(cipher, ticket_cipher(), nullptr, k.aes.data(), iv) != 1)
      result = -1;
  } else {
    bool renew = false;
    auto found = tickets.opening_key(name, renew);
    if (!found) return 0;
    k = *found;
    OPENSSL_cleanse(&*found, sizeof k);
    if (EVP_DecryptInit_ex(cipher, ticket_cipher(), nullptr, k.aes.data(), iv) != 1) result = -1;
    else if (renew) result = 2;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac.data(), k.hmac.size()),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (result > 0 && EVP_MAC_CTX_set_params(mac, params) != 1) result = -1;
  OPENSSL_cleanse(&k, sizeof k);
  return result;
}

int ticket_key(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  auto* tickets = static_cast<session_tickets*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tickets_index()));
  if (!tickets || !ticket_cipher()) return -1;
  return or_failed(-1, [&] { return seal_or_open(*tickets, name, iv, cipher, mac, enc != 0); });
}

/// Decides, once a ticket is opened, whether its session resumes: only while its certificate is accepted.
SSL_TICKET_RETURN ticket_opened(SSL*, SSL_SESSION* session, const unsigned char*, size_t, SSL_TICKET_STATUS status,
                                void* arg) {
  switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
      // A refused session falls back to a full handshake; the client may bring another certificate.
      if (!or_failed(false, [&] { return static_cast<session_tickets*>(arg)->may_resume(SSL_SESSION_get0_peer(session)); }))
        return SSL_TICKET_RETURN_IGNORE_RENEW;
      return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
      return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
      return SSL_TICKET_RETURN_ABORT;
  }
}

/// Resumption as `tickets` says, or none. Sessions are never kept on the server.
void configure_resumption(SSL_CTX* ctx, session_tickets* tickets) {
  // Without a session id context OpenSSL aborts any resumption attempt when client certificates are
  // verified ("session id context uninitialized").
  static constexpr unsigned char k_context[] = "fleetcore-devices";
  SSL_CTX_set_session_id_context(ctx, k_context, sizeof k_context - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!tickets) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    return;
  }
  SSL_CTX_set_ex_data(ctx, tickets_index(), tickets);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
  SSL_CTX_set_session_ticket_cb(ctx, nullptr, ticket_opened, tickets);
  SSL_CTX_set_timeout(ctx, static_cast<long>(tickets->lifetime().count()));
  SSL_CTX_set_num_tickets(ctx, 1);
}

}  // namespace

session_tickets::session_tickets(const common::clock& clock, std::chrono::seconds lifetime, client_cert_check check,
                                 std::filesystem::path keys_file)
    : clock_(clock),
      lifetime_(lifetime),
      check_(std::move(check)),
      keys_file_(std::move(keys_file)),
      current_(fresh(clock.wall_ms())) {
  if (keys_file_.empty()) return;
  load();
  std::lock_guard lock(mutex_);
  rotate(clock_.wall_ms());
  save();
}

session_tickets::key session_tickets::fresh(std::int64_t now_ms) {
  key k;
  k.created_ms = now_ms;
  if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 ||
      RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1 ||
      RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) != 1)
    throw std::runtime_error("no randomness for TLS session ticket keys");
  return k;
}

void session_tickets::rotate(std::int64_t now_ms) {
  const std::int64_t lifetime_ms = lifetime_.count() * 1000;
  if (now_ms - current_.created_ms < lifetime_ms) return;
  if (previous_) OPENSSL_cleanse(&*previous_, sizeof(key));
  previous_ = current_;
  retired_ms_ = now_ms;
  current_ = fresh(now_ms);
  save();
}

// keys_file_: one key per line, "<name> <aes> <hmac> <created ms> <retired ms, 0 for the sealing key>",
// the byte strings in hex. Anything unreadable is ignored: fresh keys replace it.
void session_tickets::load() {
  std::ifstream in(keys_file_);
  std::string name, aes, hmac;
  std::int64_t created = 0, retired = 0;
  while (in >> name >> aes >> hmac >> created >> retired) {
    auto n = common::unhex(name), a = common::unhex(aes), h = common::unhex(hmac);
    key k;
    if (!n || !a || !h || n->size() != k.name.size() || a->size() != k.aes.size() || h->size() != k.hmac.size()) {
      FC_LOG_WARN("tls.ticket_keys_unreadable", "file={} note=\"new keys: earlier tickets will not resume\"",
                  keys_file_.string());
      return;
    }
    std::memcpy(k.name.data(), n->data(), k.name.size());
    std::memcpy(k.aes.data(), a->data(), k.aes.size());
    std::memcpy(k.hmac.data(), h->data(), k.hmac.size());
    k.created_ms = created;
    OPENSSL_cleanse(a->data(), a->size());
    OPENSSL_cleanse(h->data(), h->size());
    if (retired == 0) {
      current_ = k;
    } else {
      previous_ = k;
      retired_ms_ = retired;
    }
    OPENSSL_cleanse(&k, sizeof k);
  }
}

void session_tickets::save() const {
  if (keys_file_.empty()) return;
  auto line = [](const key& k, std::int64_t retired) {
    return common::hex(k.name.data(), k.name.size()) + ' ' + common::hex(k.aes.data(), k.aes.size()) + ' ' +
           common::hex(k.hmac.data(), k.hmac.size()) + ' ' + std::to_string(k.created_ms) + ' ' +
           std::to_string(retired) + '\n';
  };
  std::string text = line(current_, 0);
  if (previous_) text += line(*previous_, retired_ms_);
  try {
    auth::write_private_file(keys_file_, text);
  } catch (const std::exception& e) {
    FC_LOG_WARN("tls.ticket_keys_not_saved", "err=\"{}\" note=\"tickets will not survive a restart\"", e.what());
  }
  OPENSSL_cleanse(text.data(), text.size());
}

session_tickets::key session_tickets::sealing_key() {
  std::lock_guard lock(mutex_);
  rotate(clock_.wall_ms());
  return current_;
}

std::optional<session_tickets::key> session_tickets::opening_key(const unsigned char* name, bool& renew) {
  std::lock_guard lock(mutex_);
  const std::int64_t now_ms = clock_.wall_ms();
  rotate(now_ms);
  renew = false;
  if (std::memcmp(name, current_.name.data(), k_name_size) == 0) return current_;
  if (previous_ && now_ms - retired_ms_ < lifetime_.count() * 1000 &&
      std::memcmp(name, previous_->name.data(), k_name_size) == 0) {
    renew = true;
    return previous_;
  }
  return std::nullopt;
}

session_tickets::~session_tickets() {
  OPENSSL_cleanse(&current_, sizeof current_);
  if (previous_) OPENSSL_cleanse(&*previous_, sizeof(key));
}

bool session_tickets::may_resume(X509* peer) {
  const bool ok = peer && check_ && check_(peer);
  if (!ok) refused_.inc();
  return ok;
}

void session_tickets::count_handshake(SSL* ssl) {
  if (SSL_session_reused(ssl) != 1) return;
  if (auto* tickets = static_cast<session_tickets*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tickets_index())))
    tickets->resumed_.inc();
}

void session_tickets::register_metrics(common::registry& r) const {
  r.add(resumed_, "fleetcore_tls_resumptions_total", "result=\"resumed\"",
        "TLS handshakes that resumed a session from its ticket, and tickets refused because their certificate "
        "(or its CA) is no longer accepted (the client gets a full handshake instead).");
  r.add(refused_, "fleetcore_tls_resumptions_total", "result=\"refused\"", "");
}

ssl::context make_https_context(const tls_files& files) { return base_context(files); }

boost::asio::ssl::context make_server_context(const tls_files& files, const client_cert_check* check,
                                              session_tickets* tickets) {
  ssl::context ctx = base_context(files);
  configure_resumption(ctx.native_handle(), tickets);
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
  id.certificate_id = auth::certificate_id(cert);
  X509_free(cert);
  return id;
}

}  // namespace fleetcore::transport
