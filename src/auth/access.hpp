#pragma once
// The authorization seam between the broker and identity: what the transport knows about a
// connection, and the decisions the broker asks for. The broker depends on this interface only.
#include "mqtt/errors.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace fleetcore::auth {

/// What the transport knows about the peer.
struct connection_info {
  std::string listener;      // "mqtt", "mqtts", "wss"
  std::string remote;        // address:port
  std::string cert_subject;  // verified client certificate subject (RFC 2253), empty without TLS
  std::string cert_common_name;
  std::string certificate_id;  // AWS IoT certificate id (SHA-256 of the DER), empty without TLS
  /// Decisions cached for this connection by an access_policy, valid while `cache_generation`
  /// equals the policy's generation. Touched only on the connection's worker thread.
  mutable std::unordered_map<std::string, bool> decision_cache;
  mutable std::uint64_t cache_generation = 0;
};

/// Authorization decisions for one connection, called on the connection's worker thread. Return
/// `success` to allow, or the reason code to refuse with.
class access_policy {
 public:
  virtual ~access_policy() = default;
  virtual mqtt::reason_code authorize_connect(const connection_info& c, std::string_view client_id) = 0;
  virtual mqtt::reason_code authorize_publish(const connection_info& c, std::string_view client_id,
                                              std::string_view topic, bool retain) = 0;
  virtual mqtt::reason_code authorize_subscribe(const connection_info& c, std::string_view client_id,
                                                std::string_view filter) = 0;
  /// Delivery of a message on `topic` to this connection (iot:Receive).
  virtual bool authorize_receive(const connection_info& c, std::string_view client_id, std::string_view topic) = 0;
};

/// Everything allowed: the development default for the loopback listener.
class allow_all_policy final : public access_policy {
 public:
  mqtt::reason_code authorize_connect(const connection_info&, std::string_view) override {
    return mqtt::reason_code::success;
  }
  mqtt::reason_code authorize_publish(const connection_info&, std::string_view, std::string_view, bool) override {
    return mqtt::reason_code::success;
  }
  mqtt::reason_code authorize_subscribe(const connection_info&, std::string_view, std::string_view) override {
    return mqtt::reason_code::success;
  }
  bool authorize_receive(const connection_info&, std::string_view, std::string_view) override { return true; }
};

}  // namespace fleetcore::auth
