#include "mqtt/codec.hpp"

#include "mqtt/topic.hpp"
#include "mqtt/wire.hpp"

namespace fleetcore::mqtt {
namespace {

using rc = reason_code;

bool v5(protocol_version v) { return v == protocol_version::v5; }

connect_packet decode_connect(wire::reader& in) {
  connect_packet p;
  auto name = in.utf8();
  std::uint8_t level = in.u8();
  if (!in.ok()) return p;
  if (name != "MQTT" || (level != 4 && level != 5)) {
    // MQIsdp (3.1) and unknown levels are refused with the right CONNACK by the broker.
    in.fail(name == "MQTT" || name == "MQIsdp" ? rc::unsupported_protocol_version
                                               : rc::protocol_error);
    return p;
  }
  p.version = static_cast<protocol_version>(level);
  std::uint8_t flags = in.u8();
  p.keep_alive = in.u16();
  if (!in.ok()) return p;
  if (flags & 0x01) {
    in.fail(rc::malformed_packet);  // reserved flag [MQTT-3.1.2-3]
    return p;
  }
  p.clean_start = flags & 0x02;
  bool will = flags & 0x04;
  std::uint8_t will_qos = (flags >> 3) & 0x03;
  bool will_retain = flags & 0x20;
  bool has_password = flags & 0x40;
  bool has_username = flags & 0x80;
  if (will_qos == 3 || (!will && (will_qos != 0 || will_retain))) {
    in.fail(rc::malformed_packet);
    return p;
  }
  if (!v5(p.version) && has_password && !has_username) {
    in.fail(rc::protocol_error);  // [MQTT-3.1.2-22]
    return p;
  }
  if (v5(p.version)) p.props = decode_properties(in, property_context::connect);
  p.client_id = std::string(in.utf8());
  if (will) {
    will_message w;
    if (v5(p.version)) w.props = decode_properties(in, property_context::will);
    w.topic = std::string(in.utf8());
    w.payload = std::string(in.binary());
    w.qos = will_qos;
    w.retain = will_retain;
    if (in.ok() && !valid_topic_name(w.topic)) in.fail(rc::topic_name_invalid);
    if (in.ok() && w.props.payload_format_indicator.value_or(0) == 1 && !valid_utf8(w.payload))
      in.fail(rc::payload_format_invalid);
    p.will = std::move(w);
  }
  if (has_username) p.username = std::string(in.utf8());
  if (has_password) p.password = std::string(in.binary());
  if (in.ok() && in.remaining() != 0) in.fail(rc::malformed_packet);
  return p;
}

connack_packet decode_connack(wire::reader& in, protocol_version v) {
  connack_packet p;
  std::uint8_t ack_flags = in.u8();
  if (ack_flags & 0xFE) in.fail(rc::malformed_packet);
  p.session_present = ack_flags & 1;
  std::uint8_t code = in.u8();
  if (v5(v)) {
    p.reason = static_cast<rc>(code);
    if (in.remaining() > 0) p.props = decode_properties(in, property_context::connack);
  } else {
    // Keep the 3.1.1 return code as the first reason of the same meaning.
    static constexpr rc map[] = {rc::success,          rc::unsupported_protocol_version,
                                 rc::client_identifier_not_valid, rc::server_unavailable,
                                 rc::bad_user_name_or_password,   rc::not_authorized};
    if (code >= 6) in.fail(rc::malformed_packet);
    p.reason = code < 6 ? map[code] : rc::unspecified_error;
  }
  return p;
}

publish_packet decode_publish(wire::reader& in, std::uint8_t flags, protocol_version v) {
  publish_packet p;
  p.dup = flags & 0x08;
  p.qos = (flags >> 1) & 0x03;
  p.retain = flags & 0x01;
  if (p.qos == 3 || (p.qos == 0 && p.dup)) {
    in.fail(rc::malformed_packet);
    return p;
  }
  p.topic = std::string(in.utf8());
  if (p.qos > 0) {
    p.packet_id = in.u16();
    if (in.ok() && p.packet_id == 0) in.fail(rc::protocol_error);
  }
  if (v5(v)) p.props = decode_properties(in, property_context::publish);
  if (!in.ok()) return p;
  if (p.topic.empty() ? !(v5(v) && p.props.topic_alias) : !valid_topic_name(p.topic)) {
    in.fail(p.topic.empty() && v5(v) ? rc::protocol_error : rc::topic_name_invalid);
    return p;
  }
  p.payload = std::string(in.rest());
  if (p.props.payload_format_indicator.value_or(0) == 1 && !valid_utf8(p.payload))
    in.fail(rc::payload_format_invalid);
  return p;
}

ack_packet decode_ack(wire::reader& in, packet_type t, protocol_version v) {
  ack_packet p;
  p.type = t;
  p.packet_id = in.u16();
  if (in.ok() && p.packet_id == 0) in.fail(rc::protocol_error);
  if (v5(v) && in.remaining() > 0) {
    p.reason = static_cast<rc>(in.u8());
    if (in.remaining() > 0) {
      property_context c = t == packet_type::puback   ? property_context::puback
                           : t == packet_type::pubrec ? property_context::pubrec
                           : t == packet_type::pubrel ? property_context::pubrel
                                                      : property_context::pubcomp;
      p.props = decode_properties(in, c);
    }
  }
  if (in.ok() && in.remaining() != 0) in.fail(rc::malformed_packet);
  return p;
}

subscribe_packet decode_subscribe(wire::reader& in, protocol_version v) {
  subscribe_packet p;
  p.packet_id = in.u16();
  if (in.ok() && p.packet_id == 0) in.fail(rc::protocol_error);
  if (v5(v)) p.props = decode_properties(in, property_context::subscribe);
  while (in.ok() && in.remaining() > 0) {
    subscription_request s;
    s.filter = std::string(in.utf8());
    std::uint8_t opts = in.u8();
    if (!in.ok()) break;
    s.qos = opts & 0x03;
    if (s.qos == 3) in.fail(rc::malformed_packet);
    if (v5(v)) {
      s.no_local = opts & 0x04;
      s.retain_as_published = opts & 0x08;
      std::uint8_t rh = (opts >> 4) & 0x03;
      if (rh == 3 || (opts & 0xC0)) in.fail(rc::protocol_error);
      s.handling = static_cast<retain_handling>(rh);
    } else if (opts & 0xFC) {
      in.fail(rc::malformed_packet);  // [MQTT-3-8.3-4]
    }
    p.subscriptions.push_back(std::move(s));
  }
  if (in.ok() && p.subscriptions.empty()) in.fail(rc::protocol_error);  // [MQTT-3.8.3-3]
  return p;
}

suback_packet decode_suback(wire::reader& in, protocol_version v) {
  suback_packet p;
  p.packet_id = in.u16();
  if (v5(v)) p.props = decode_properties(in, property_context::suback);
  while (in.ok() && in.remaining() > 0) {
    std::uint8_t code = in.u8();
    if (!v5(v) && code > 2 && code != 0x80) in.fail(rc::malformed_packet);  // 3.1.1 return codes
    p.reasons.push_back(static_cast<rc>(code));
  }
  return p;
}

unsubscribe_packet decode_unsubscribe(wire::reader& in, protocol_version v) {
  unsubscribe_packet p;
  p.packet_id = in.u16();
  if (in.ok() && p.packet_id == 0) in.fail(rc::protocol_error);
  if (v5(v)) p.props = decode_properties(in, property_context::unsubscribe);
  while (in.ok() && in.remaining() > 0) p.filters.emplace_back(in.utf8());
  if (in.ok() && p.filters.empty()) in.fail(rc::protocol_error);  // [MQTT-3.10.3-2]
  return p;
}

unsuback_packet decode_unsuback(wire::reader& in, protocol_version v) {
  unsuback_packet p;
  p.packet_id = in.u16();
  if (v5(v)) {
    p.props = decode_properties(in, property_context::unsuback);
    while (in.ok() && in.remaining() > 0) p.reasons.push_back(static_cast<rc>(in.u8()));
  }
  return p;
}

template <typename Packet>
Packet decode_reason_and_props(wire::reader& in, protocol_version v, property_context c) {
  Packet p;
  if (v5(v) && in.remaining() > 0) {
    p.reason = static_cast<rc>(in.u8());
    if (in.remaining() > 0) p.props = decode_properties(in, c);
  }
  if (in.ok() && in.remaining() != 0) in.fail(rc::malformed_packet);
  return p;
}

/// Required fixed-header flags per packet type [MQTT-2.2.2-1]; PUBLISH is checked separately.
std::uint8_t required_flags(packet_type t) {
  switch (t) {
    case packet_type::pubrel:
    case packet_type::subscribe:
    case packet_type::unsubscribe: return 0x02;
    default: return 0x00;
  }
}

}  // namespace

decode_result decode(std::span<const std::uint8_t> data, protocol_version version,
                     std::uint32_t max_packet_size) {
  decode_result res;
  if (data.empty()) return res;
  // Fixed header: type and flags, then the remaining length as a variable byte integer.
  std::uint32_t remaining = 0;
  std::size_t header = 1;
  for (int i = 0;; ++i) {
    if (header >= data.size()) return res;  // need more
    std::uint8_t b = data[header++];
    remaining |= std::uint32_t(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) {
      if (i > 0 && b == 0) {  // a longer encoding than the value needs [MQTT-1.5.5-1]
        res.state = decode_result::status::error;
        res.error = rc::malformed_packet;
        return res;
      }
      break;
    }
    if (i == 3) {
      res.state = decode_result::status::error;
      res.error = rc::malformed_packet;
      return res;
    }
  }
  std::uint8_t type_bits = data[0] >> 4;
  std::uint8_t flags = data[0] & 0x0F;
  auto fail = [&](rc why) {
    res.state = decode_result::status::error;
    res.error = why;
    return res;
  };
  if (type_bits == 0 || (type_bits == 15 && !v5(version))) return fail(rc::malformed_packet);
  auto type = static_cast<packet_type>(type_bits);
  if (type != packet_type::publish && flags != required_flags(type)) return fail(rc::malformed_packet);
  if (std::uint64_t(header) + remaining > max_packet_size) return fail(rc::packet_too_large);
  if (data.size() < header + remaining) return res;  // need more

  wire::reader in(data.subspan(header, remaining));
  switch (type) {
    case packet_type::connect: res.pkt = decode_connect(in); break;
    case packet_type::connack: res.pkt = decode_connack(in, version); break;
    case packet_type::publish: res.pkt = decode_publish(in, flags, version); break;
    case packet_type::puback:
    case packet_type::pubrec:
    case packet_type::pubrel:
    case packet_type::pubcomp: res.pkt = decode_ack(in, type, version); break;
    case packet_type::subscribe: res.pkt = decode_subscribe(in, version); break;
    case packet_type::suback: res.pkt = decode_suback(in, version); break;
    case packet_type::unsubscribe: res.pkt = decode_unsubscribe(in, version); break;
    case packet_type::unsuback: res.pkt = decode_unsuback(in, version); break;
    case packet_type::pingreq:
      if (remaining != 0) in.fail(rc::malformed_packet);
      res.pkt = pingreq_packet{};
      break;
    case packet_type::pingresp:
      if (remaining != 0) in.fail(rc::malformed_packet);
      res.pkt = pingresp_packet{};
      break;
    case packet_type::disconnect:
      res.pkt = decode_reason_and_props<disconnect_packet>(in, version, property_context::disconnect);
      break;
    case packet_type::auth:
      res.pkt = decode_reason_and_props<auth_packet>(in, version, property_context::auth);
      break;
  }
  if (!in.ok()) return fail(in.error);
  res.state = decode_result::status::ok;
  res.consumed = header + remaining;
  return res;
}

namespace {

/// Writes the fixed header in front of a body built in `body`.
void finish(std::vector<std::uint8_t>& out, std::uint8_t first_byte,
            const std::vector<std::uint8_t>& body) {
  wire::writer w(out);
  w.u8(first_byte);
  w.varint(static_cast<std::uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
}

std::uint8_t header_byte(packet_type t, std::uint8_t flags = 0) {
  return static_cast<std::uint8_t>(static_cast<std::uint8_t>(t) << 4 | flags);
}

struct encoder {
  protocol_version v;
  std::vector<std::uint8_t>& out;

  void operator()(const connect_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.binary("MQTT");
    w.u8(static_cast<std::uint8_t>(p.version));
    std::uint8_t flags = 0;
    if (p.clean_start) flags |= 0x02;
    if (p.will) {
      flags |= 0x04 | (p.will->qos << 3);
      if (p.will->retain) flags |= 0x20;
    }
    if (p.password) flags |= 0x40;
    if (p.username) flags |= 0x80;
    w.u8(flags);
    w.u16(p.keep_alive);
    bool is5 = p.version == protocol_version::v5;
    if (is5) encode_properties(w, p.props, property_context::connect);
    w.binary(p.client_id);
    if (p.will) {
      if (is5) encode_properties(w, p.will->props, property_context::will);
      w.binary(p.will->topic);
      w.binary(p.will->payload);
    }
    if (p.username) w.binary(*p.username);
    if (p.password) w.binary(*p.password);
    finish(out, header_byte(packet_type::connect), body);
  }
  void operator()(const connack_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.u8(p.session_present ? 1 : 0);
    if (v5(v)) {
      w.u8(static_cast<std::uint8_t>(p.reason));
      encode_properties(w, p.props, property_context::connack);
    } else {
      w.u8(to_v311_connack(p.reason));
    }
    finish(out, header_byte(packet_type::connack), body);
  }
  void operator()(const publish_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.binary(p.topic);
    if (p.qos > 0) w.u16(p.packet_id);
    if (v5(v)) encode_properties(w, p.props, property_context::publish);
    w.bytes(p.payload);
    std::uint8_t flags = static_cast<std::uint8_t>((p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0));
    finish(out, header_byte(packet_type::publish, flags), body);
  }
  void operator()(const ack_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.u16(p.packet_id);
    if (v5(v)) {
      bool has_props = properties_size(p.props, property_context::puback) > 0;
      if (p.reason != rc::success || has_props) w.u8(static_cast<std::uint8_t>(p.reason));
      if (has_props) encode_properties(w, p.props, property_context::puback);
    }
    finish(out, header_byte(p.type, p.type == packet_type::pubrel ? 0x02 : 0), body);
  }
  void operator()(const subscribe_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.u16(p.packet_id);
    if (v5(v)) encode_properties(w, p.props, property_context::subscribe);
    for (const auto& s : p.subscriptions) {
      w.binary(s.filter);
      std::uint8_t opts = s.qos;
      if (v5(v)) {
        if (s.no_local) opts |= 0x04;
        if (s.retain_as_published) opts |= 0x08;
        opts |= static_cast<std::uint8_t>(s.handling) << 4;
      }
      w.u8(opts);
    }
    finish(out, header_byte(packet_type::subscribe, 0x02), body);
  }
  void operator()(const suback_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.u16(p.packet_id);
    if (v5(v)) encode_properties(w, p.props, property_context::suback);
    for (auto r : p.reasons) {
      auto code = static_cast<std::uint8_t>(r);
      // 3.1.1 knows only granted QoS 0-2 and 0x80 failure.
      w.u8(v5(v) || code <= 2 ? code : 0x80);
    }
    finish(out, header_byte(packet_type::suback), body);
  }
  void operator()(const unsubscribe_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.u16(p.packet_id);
    if (v5(v)) encode_properties(w, p.props, property_context::unsubscribe);
    for (const auto& f : p.filters) w.binary(f);
    finish(out, header_byte(packet_type::unsubscribe, 0x02), body);
  }
  void operator()(const unsuback_packet& p) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    w.u16(p.packet_id);
    if (v5(v)) {
      encode_properties(w, p.props, property_context::unsuback);
      for (auto r : p.reasons) w.u8(static_cast<std::uint8_t>(r));
    }
    finish(out, header_byte(packet_type::unsuback), body);
  }
  void operator()(const pingreq_packet&) {
    out.push_back(header_byte(packet_type::pingreq));
    out.push_back(0);
  }
  void operator()(const pingresp_packet&) {
    out.push_back(header_byte(packet_type::pingresp));
    out.push_back(0);
  }
  void operator()(const disconnect_packet& p) { reason_and_props(packet_type::disconnect, p.reason, p.props, property_context::disconnect); }
  void operator()(const auth_packet& p) { reason_and_props(packet_type::auth, p.reason, p.props, property_context::auth); }

  void reason_and_props(packet_type t, rc reason, const properties& props, property_context c) {
    std::vector<std::uint8_t> body;
    wire::writer w(body);
    if (v5(v)) {
      bool has_props = properties_size(props, c) > 0;
      if (reason != rc::success || has_props) w.u8(static_cast<std::uint8_t>(reason));
      if (has_props) encode_properties(w, props, c);
    }
    finish(out, header_byte(t), body);
  }
};

}  // namespace

void encode(const packet& p, protocol_version version, std::vector<std::uint8_t>& out) {
  std::visit(encoder{version, out}, p);
}

}  // namespace fleetcore::mqtt
