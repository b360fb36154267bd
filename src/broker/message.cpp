#include "broker/message.hpp"

#include "mqtt/wire.hpp"

namespace fleetcore::broker {

message_ptr make_message(std::string topic, std::string payload, std::uint8_t qos, bool retain,
                         const mqtt::properties& props, std::int64_t now_wall_ms,
                         std::uint64_t origin, std::uint8_t rule_hops) {
  auto m = std::make_shared<message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  m->retain = retain;
  m->origin = origin;
  m->rule_hops = rule_hops;
  if (props.message_expiry_interval)
    m->expiry_at_ms = now_wall_ms + std::int64_t(*props.message_expiry_interval) * 1000;
  mqtt::properties fwd;
  fwd.payload_format_indicator = props.payload_format_indicator;
  fwd.content_type = props.content_type;
  fwd.response_topic = props.response_topic;
  fwd.correlation_data = props.correlation_data;
  fwd.user_properties = props.user_properties;
  std::vector<std::uint8_t> buf;
  mqtt::wire::writer w(buf);
  mqtt::encode_properties(w, fwd, mqtt::property_context::publish);
  // Drop the length prefix: per-recipient properties are added in front when sending.
  auto body = static_cast<std::uint32_t>(mqtt::properties_size(fwd, mqtt::property_context::publish));
  m->forward_props.assign(buf.begin() + static_cast<std::ptrdiff_t>(mqtt::wire::varint_size(body)),
                          buf.end());
  return m;
}

}  // namespace fleetcore::broker
