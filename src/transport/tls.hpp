#pragma once
#include "common/clock.hpp"
#include "common/metrics.hpp"

#include <boost/asio/ssl/context.hpp>

#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
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

/// Session resumption for the device listeners, stateless: TLS 1.3 PSK tickets and TLS 1.2 tickets
/// sealed with keys only the server holds, and no session kept on the server.
/// - One ticket per handshake, valid `lifetime`.
/// - The key that seals new tickets changes every `lifetime` (when it is next needed); the retired one
///   still opens tickets, asking for a fresh one, for one more `lifetime`. A ticket itself is good for
///   `lifetime` (OpenSSL's session timeout), whichever key sealed it.
/// - With `keys_file`, the keys are also written there (mode 0600, beside the CA key, on each
///   rotation) and read back at start, so that tickets survive a restart: a fleet reconnecting after a
///   crash resumes instead of all doing full handshakes. Without, a restart ends every ticket.
/// - Before a session resumes, the certificate it was established with is checked again by `check`: a
///   device whose certificate (or its CA) is no longer ACTIVE gets a full handshake, which refuses it.
/// Thread-safe: OpenSSL calls it on the workers during handshakes. Must outlive the contexts using it.
class session_tickets {
 public:
  static constexpr std::size_t k_name_size = 16;  // what OpenSSL's ticket key callback names a key with
  struct key {
    std::array<unsigned char, k_name_size> name{};
    std::array<unsigned char, 32> aes{};   // AES-256-CBC
    std::array<unsigned char, 32> hmac{};  // HMAC-SHA256
    std::int64_t created_ms = 0;  // wall clock: keys outlive the process
  };

  session_tickets(const common::clock& clock, std::chrono::seconds lifetime, client_cert_check check,
                  std::filesystem::path keys_file = {});
  ~session_tickets();
  session_tickets(const session_tickets&) = delete;
  session_tickets& operator=(const session_tickets&) = delete;

  std::chrono::seconds lifetime() const noexcept { return lifetime_; }
  /// The key that seals a new ticket, a fresh one when the current key is `lifetime` old.
  key sealing_key();
  /// The key named `name` while it may still open tickets; `renew` is set when it no longer seals them.
  std::optional<key> opening_key(const unsigned char* name, bool& renew);
  /// Whether a session established with `peer` may resume now (a refusal is counted).
  bool may_resume(X509* peer);
  /// Counts a completed handshake of a context using session_tickets if it resumed a session.
  static void count_handshake(SSL* ssl);

  void register_metrics(common::registry& r) const;

 private:
  static key fresh(std::int64_t now_ms);
  void rotate(std::int64_t now_ms);  // under mutex_
  void load();                       // from keys_file_, at construction
  void save() const;                 // to keys_file_, under mutex_ (or at construction)

  const common::clock& clock_;
  std::chrono::seconds lifetime_;
  client_cert_check check_;
  std::filesystem::path keys_file_;
  std::mutex mutex_;
  key current_;
  std::optional<key> previous_;
  std::int64_t retired_ms_ = 0;  // when previous_ stopped sealing
  common::counter resumed_, refused_;
};

/// A TLS 1.2+ server context that requires a client certificate. With `check`, the certificate is
/// accepted if `check` says so; otherwise it must chain to `files.client_ca`. With `tickets`, sessions
/// resume as `session_tickets` says; without, they never do. `check` and `tickets` must outlive the
/// context. Throws std::runtime_error naming the file that could not be loaded.
boost::asio::ssl::context make_server_context(const tls_files& files, const client_cert_check* check = nullptr,
                                              session_tickets* tickets = nullptr);

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
