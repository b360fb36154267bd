#pragma once
// The MQTT protocol machine of one connection, independent of the byte stream under it. A transport
// (src/transport) derives from it, feeds received bytes into on_data() and performs the writes and the
// close it asks for. Everything here runs on the connection's worker thread.
#include "auth/access.hpp"
#include "broker/hooks.hpp"
#include "broker/message.hpp"
#include "broker/session.hpp"
#include "mqtt/codec.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace fleetcore::broker {

class broker;
class worker;


class client_connection : public std::enable_shared_from_this<client_connection> {
 public:
  client_connection(broker& b, worker& w, connection_info info);
  virtual ~client_connection();

  /// Transport: `data` was received. May be the worker's scratch buffer: bytes not consumed are
  /// copied. Returns false when the transport should not read again until resume_reading().
  bool on_data(std::span<const std::uint8_t> data);
  /// Transport: the last write completed.
  void on_write_done(const boost::system::error_code& ec);
  /// Transport: the stream is closed (read error, EOF or after close_transport()). Called once.
  void on_transport_closed();

  // --- broker side ---
  /// The session is ready on this worker; sends CONNACK and resumes the session.
  void attach(std::shared_ptr<session> s, bool session_present);
  /// Refuses the pending CONNECT with `rc` (counted, logged) and closes; `answer = false` closes without a CONNACK.
  void refuse(mqtt::reason_code rc, bool answer = true);
  /// Sends a PUBLISH of `d`; `packet_id` 0 for QoS 0. Returns false if the message was dropped
  /// because it exceeds the client's maximum packet size.
  bool send_publish(const delivery& d, std::uint16_t packet_id, bool dup);
  void send_pubrel(std::uint16_t packet_id);
  /// Closes the connection, sending DISCONNECT with `rc` first to MQTT 5 clients that completed
  /// CONNECT. Publishes the will unless the client disconnected normally.
  void close(mqtt::reason_code rc);
  /// Keepalive and connect-timeout check from the worker's sweep.
  void check_timeouts(std::chrono::steady_clock::time_point now);
  /// Back-pressure: resume reading if this connection was paused.
  void resume_reading();

  /// True while the client has used up its publish rate for the current second.
  bool rate_limited() const;
  /// True while a session this client published to holds it back (congested, within its grace).
  bool blocked() const;
  std::size_t outbound_bytes() const noexcept { return pending_.bytes + writing_bytes_; }
  std::uint16_t client_receive_maximum() const noexcept { return client_receive_max_; }
  mqtt::protocol_version version() const noexcept { return version_; }
  const connection_info& info() const noexcept { return info_; }
  const std::string& client_id() const noexcept { return client_id_; }
  worker& home() noexcept { return worker_; }
  /// Transport: the verified client certificate, once the TLS handshake is done.
  void set_peer(std::string subject, std::string common_name, std::string certificate_id) {
    info_.cert_subject = std::move(subject);
    info_.cert_common_name = std::move(common_name);
    info_.certificate_id = std::move(certificate_id);
  }

 protected:
  /// Starts one async write of `buffers`; must call on_write_done() when it completes.
  virtual void write_buffers(std::vector<boost::asio::const_buffer> buffers) = 0;
  /// Closes the stream; the transport then calls on_transport_closed().
  virtual void close_transport() = 0;
  /// Starts reading again after on_data() returned false.
  virtual void start_reading() = 0;
  /// The transport's own handshakes are done: CONNECT has 10 s from now (the handshakes had 30 s).
  void transport_ready();
  /// CONNECT was accepted (CONNACK success is being sent): the connection is no longer pending
  /// authentication.
  virtual void on_authenticated() {}

 private:
  enum class state : std::uint8_t { awaiting_connect, connecting, connected, closing, closed };

  struct out_batch {
    struct segment {
      const std::uint8_t* ext = nullptr;  // external bytes (payload, shared properties)
      std::size_t off = 0;                // arena offset when ext is null
      std::size_t len = 0;
    };
    std::vector<std::uint8_t> arena;
    std::vector<segment> segments;
    std::vector<message_ptr> refs;  // keeps external bytes alive until written
    std::size_t bytes = 0;
    void append(const std::uint8_t* p, std::size_t n);
    void append_ref(std::string_view s);
    void clear();
    /// Frees what clear() keeps for reuse.
    void release();
  };

  /// Decodes and handles packets from the front of `data` until it runs out, reading pauses or the
  /// connection closes; returns the bytes consumed, or nullopt after a protocol violation.
  std::optional<std::size_t> decode_packets(std::span<const std::uint8_t> data);
  /// Decodes what is buffered in rbuf_; returns wants_input().
  bool process();
  bool wants_input() const noexcept;
  bool handle(mqtt::packet& p);
  void handle_connect(mqtt::connect_packet& p);
  void handle_publish(mqtt::publish_packet& p);
  void handle_ack(const mqtt::ack_packet& p);
  void handle_subscribe(mqtt::subscribe_packet& p);
  void handle_unsubscribe(mqtt::unsubscribe_packet& p);
  void handle_disconnect(const mqtt::disconnect_packet& p);
  void send(const mqtt::packet& p);
  void request_flush();
  void drain_and_close();
  void flush();
  void protocol_violation(mqtt::reason_code rc, std::string_view what);
  /// This connection's session as hooks see it; while a session is attached.
  session_info hook_view() const;

  broker& broker_;
  worker& worker_;
  connection_info info_;
  state state_ = state::awaiting_connect;
  mqtt::protocol_version version_ = mqtt::protocol_version::v5;
  std::shared_ptr<session> session_;
  std::string client_id_;
  std::unique_ptr<mqtt::will_message> will_;  // only clients that set a will pay for one
  bool normal_disconnect_ = false;
  bool client_disconnected_ = false;  // the client sent DISCONNECT (with or without its will)
  bool read_paused_ = false;
  bool in_input_ = false;  // inside on_data()/process(): attach() must not decode again
  struct input_guard {
    bool& flag;
    bool previous;
    explicit input_guard(bool& f) : flag(f), previous(f) { flag = true; }
    ~input_guard() { flag = previous; }
  };
  bool write_in_flight_ = false;
  bool flush_scheduled_ = false;
  bool connack_sent_ = false;
  bool assigned_id_ = false;
  std::uint16_t keep_alive_ = 0;
  std::uint64_t connection_number_ = 0;  // lifecycle events' versionNumber
  std::uint16_t client_receive_max_ = 65535;
  std::uint32_t client_max_packet_ = 0xFFFFFFFF;
  std::uint32_t session_expiry_ = 0;
  std::uint16_t inbound_qos1_pending_ = 0;  // QoS 1 publishes whose PUBACK waits for storage
  std::chrono::steady_clock::time_point last_rx_;
  std::chrono::steady_clock::time_point opened_;  // accepted, then: transport ready
  bool transport_ready_ = false;
  std::chrono::steady_clock::time_point rate_window_;
  std::uint32_t rate_count_ = 0;
  std::weak_ptr<session> blocked_on_;  // congested recipient this publisher waits for
  std::vector<std::string> aliases_;  // inbound topic aliases, sized on first use
  std::uint16_t client_alias_max_ = 0;  // outbound topic aliases the client accepts (and we use)
  std::unique_ptr<std::map<std::string, std::uint16_t, std::less<>>> out_aliases_;  // topic -> alias
  std::vector<std::uint8_t> rbuf_;    // bytes of a partial packet
  out_batch pending_;
  out_batch writing_;
  std::size_t writing_bytes_ = 0;

  friend class broker;
};

}  // namespace fleetcore::broker
