#include "api/services.hpp"

#include "mqtt/topic.hpp"

namespace fleetcore::api {

namespace json = boost::json;

namespace {

api_server::response aws_error(unsigned status, std::string code, std::string_view message) {
  return {status, json::serialize(json::object{{"message", message}}), std::move(code)};
}

std::string text_of(const json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

/// A shadow reply (its body is the shadow's own response or error document) as AWS answers it.
api_server::response shadow_answer(shadow::reply r) {
  if (r.status == 200) return {200, std::move(r.body), {}};
  const char* code = "InvalidRequestException";
  switch (r.status) {
    case 401: code = "UnauthorizedException"; break;
    case 403: code = "ForbiddenException"; break;
    case 404: code = "ResourceNotFoundException"; break;
    case 409: code = "ConflictException"; break;
    case 413: code = "RequestEntityTooLargeException"; break;
    case 415: code = "UnsupportedDocumentEncodingException"; break;
    case 429: code = "ThrottlingException"; break;
    case 500: code = "InternalFailureException"; break;
    default: break;
  }
  return {static_cast<unsigned>(r.status), std::move(r.body), code};
}

}  // namespace

api_server::handler control_plane(registry::registry& r) {
  return [&r](const route& rt, const json::object& input) -> api_server::response {
    auto out = r.call(rt.operation, input);
    if (out.error) return aws_error(out.error->status, out.error->code, out.error->message);
    return {rt.status, json::serialize(out.body), {}};
  };
}

api_server::handler data_plane(shadow::shadow_service& shadows, broker::broker& b) {
  return [&shadows, &b](const route& rt, const json::object& input) -> api_server::response {
    std::string_view op = rt.operation;
    std::string thing = text_of(input, "thingName");
    if (op == "Publish") {
      std::string topic = text_of(input, "topic");
      std::int64_t qos = 0;
      if (auto* q = input.if_contains("qos"); q && q->is_int64()) qos = q->as_int64();
      bool retain = false;
      if (auto* rv = input.if_contains("retain"); rv && rv->is_bool()) retain = rv->as_bool();
      if (qos < 0 || qos > 1) return aws_error(400, "InvalidRequestException", "qos must be 0 or 1");
      // The same topic rules as an MQTT PUBLISH (broker::check_publish_topic).
      switch (b.check_publish_topic(topic, broker::broker::origin::http)) {
        case mqtt::reason_code::success: break;
        case mqtt::reason_code::not_authorized:
          return aws_error(401, "UnauthorizedException", "the topic is reserved");
        default:
          return aws_error(400, "InvalidRequestException", "invalid topic");
      }
      auto done = std::make_shared<std::promise<bool>>();
      auto stored = done->get_future();
      b.publish_external(topic, text_of(input, "payload"), static_cast<std::uint8_t>(qos), retain,
                         [done](bool durable) { done->set_value(durable); });
      if (!stored.get()) return aws_error(500, "InternalFailureException", "the message could not be stored");
      return {200, R"({"message":"OK"})", {}};
    }
    if (!shadow::shadow_service::valid_thing_name(thing))
      return aws_error(400, "InvalidRequestException", "invalid thing name");
    std::string name = text_of(input, "shadowName");
    if (!name.empty() && !shadow::shadow_service::valid_shadow_name(name))
      return aws_error(400, "InvalidRequestException", "invalid shadow name");
    if (op == "ListNamedShadowsForThing") {
      std::int64_t size = 25;
      if (auto* p = input.if_contains("pageSize"); p && p->is_int64()) size = p->as_int64();
      if (size < 1 || size > 100) return aws_error(400, "InvalidRequestException", "pageSize must be 1 to 100");
      std::optional<std::string> token;
      if (auto t = text_of(input, "nextToken"); !t.empty()) token = t;
      return shadow_answer(shadows.list_named(thing, token, static_cast<int>(size)).get());
    }
    shadow::operation sop = op == "GetThingShadow"      ? shadow::operation::get
                            : op == "UpdateThingShadow" ? shadow::operation::update
                                                        : shadow::operation::remove;
    return shadow_answer(shadows.call(sop, thing, name, text_of(input, "payload")).get());
  };
}

}  // namespace fleetcore::api
