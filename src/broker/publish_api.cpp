#include "broker/publish_api.hpp"

#include "common/json_members.hpp"

#include <future>
#include <memory>

namespace fleetcore::broker {

common::aws_operations publish_operations(broker& b) {
  auto publish = [&b](std::string_view, const boost::json::object& input) {
    using common::aws_response;
    std::string topic(common::text_member(input, "topic").value_or(""));
    std::int64_t qos = common::int_member(input, "qos").value_or(0);
    bool retain = common::bool_member(input, "retain").value_or(false);
    if (qos < 0 || qos > 1) return aws_response::error(400, "InvalidRequestException", "qos must be 0 or 1");
    // The same topic rules as an MQTT PUBLISH (broker::check_publish_topic).
    switch (b.check_publish_topic(topic, broker::origin::http)) {
      case mqtt::reason_code::success: break;
      case mqtt::reason_code::not_authorized:
        return aws_response::error(401, "UnauthorizedException", "the topic is reserved");
      default:
        return aws_response::error(400, "InvalidRequestException", "invalid topic");
    }
    auto done = std::make_shared<std::promise<bool>>();
    auto stored = done->get_future();
    b.publish_external(topic, std::string(common::text_member(input, "payload").value_or("")),
                       static_cast<std::uint8_t>(qos), retain, [done](bool durable) { done->set_value(durable); });
    if (!stored.get()) return aws_response::error(500, "InternalFailureException", "the message could not be stored");
    return aws_response::ok(R"({"message":"OK"})");
  };
  return {{"Publish", publish}};
}

}  // namespace fleetcore::broker
