#include "provisioning/fleet.hpp"

#include "common/hex.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "provisioning/provisioner.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/rand.h>

#include <stdexcept>

namespace fleetcore::provisioning {

namespace json = boost::json;

namespace {
constexpr std::string_view k_kind = "provisioning_token";
constexpr std::string_view k_create = "$aws/certificates/create/";
constexpr std::string_view k_create_csr = "$aws/certificates/create-from-csr/";
constexpr std::string_view k_templates = "$aws/provisioning-templates/";

/// The template name of `$aws/provisioning-templates/<name>/provision/<format>[/...]`, or empty.
std::string_view template_of(std::string_view topic) {
  if (!topic.starts_with(k_templates)) return {};
  topic.remove_prefix(k_templates.size());
  auto slash = topic.find('/');
  if (slash == std::string_view::npos || !topic.substr(slash + 1).starts_with("provision/")) return {};
  return topic.substr(0, slash);
}

/// The request's format: what follows the operation ("json", "cbor", or anything a client wrote).
std::string_view format_of(std::string_view topic) {
  auto slash = topic.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : topic.substr(slash + 1);
}
}  // namespace

fleet_service::fleet_service(registry::registry& reg, template_service& templates, storage::store& store,
                             common::clock& clock, fleet_settings s)
    : registry_(reg), templates_(templates), store_(store), clock_(clock), settings_(s) {
  for (const auto& d : store_.load_documents(std::string(k_kind))) {
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (ec || !v.is_object()) throw std::runtime_error("unreadable provisioning token " + d.key.substr(0, 8));
    tokens_[d.key] = {std::string(common::text_member(v.as_object(), "certificateId").value_or("")),
                      common::int_member(v.as_object(), "expiresMs").value_or(0)};
  }
}

/// What follows a request's prefix: `<format>` for a request, `<format>/accepted|rejected` for an answer.
std::string_view request_rest(std::string_view topic) {
  if (topic.starts_with(k_create)) return topic.substr(k_create.size());
  if (topic.starts_with(k_create_csr)) return topic.substr(k_create_csr.size());
  auto name = template_of(topic);
  if (name.empty()) return {};
  return topic.substr(k_templates.size() + name.size() + std::string_view("/provision/").size());
}

broker::topic_claim fleet_service::claim(std::string_view topic) const {
  auto rest = request_rest(topic);
  if (rest.empty()) return broker::topic_claim::none;
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return broker::topic_claim::consumed;  // a request (in any format)
  auto after = rest.substr(slash + 1);
  // The answers are the service's; a filter such as .../json/+ is a device's subscription to them.
  return after == "accepted" || after == "rejected" ? broker::topic_claim::reserved : broker::topic_claim::none;
}

bool fleet_service::on_message(const broker::message_ptr& m, const broker::publish_context& ctx) {
  if (claim(m->topic) != broker::topic_claim::consumed) return false;
  if (m->origin == 0 || ctx.client_id.empty()) return true;  // nobody to answer (HTTP publish, a rule)
  bool admitted = false;
  {
    std::lock_guard lock(inflight_mutex_);
    int& n = inflight_[m->origin];
    admitted = n < settings_.max_inflight_per_session;
    if (admitted) ++n;
    else if (n == 0) inflight_.erase(m->origin);
  }
  request r{m->topic, m->payload, std::string(ctx.client_id), ctx.connection ? ctx.connection->certificate_id : "",
            m->origin};
  if (!admitted) {
    rejected_.inc();
    if (reply)
      reply(r.client_id, r.session, r.topic + "/rejected",
            json::serialize(json::object{{"statusCode", 429}, {"errorCode", "Throttled"},
                                         {"errorMessage", "too many provisioning requests in flight on this connection"}}));
    return true;
  }
  registry_.defer([this, r = std::move(r)] {
    handle(r);
    std::lock_guard lock(inflight_mutex_);
    if (auto it = inflight_.find(r.session); it != inflight_.end() && --it->second <= 0) inflight_.erase(it);
  });
  return true;
}

void fleet_service::handle(const request& r) {
  expire();
  std::string code;
  int status = 400;
  std::string answer;
  if (format_of(r.topic) != "json") {
    code = format_of(r.topic) == "cbor" ? "UnsupportedFormat" : "InvalidTopic";
    answer.clear();
    status = 400;
  } else if (r.topic.starts_with(k_create)) {
    answer = create_certificate(r, false, code, status);
  } else if (r.topic.starts_with(k_create_csr)) {
    answer = create_certificate(r, true, code, status);
  } else {
    answer = register_thing(r, template_of(r.topic), code, status);
  }
  if (!reply) return;
  // A request's format that is not json is answered on the json topic.
  std::string base = r.topic;
  if (format_of(base) != "json") base = base.substr(0, base.rfind('/') + 1) + "json";
  if (code.empty()) return reply(r.client_id, r.session, base + "/accepted", std::move(answer));
  rejected_.inc();
  if (answer.empty())
    answer = code == "UnsupportedFormat" ? "fleetcore answers fleet provisioning in JSON only for now"
                                         : "the topic is not a fleet provisioning request";
  FC_LOG_INFO("provisioning.rejected", "client={:q} topic={:q} code={} message={:q}", common::untrusted(r.client_id),
              common::untrusted(r.topic), code, common::untrusted(answer));
  reply(r.client_id, r.session, base + "/rejected",
        json::serialize(json::object{{"statusCode", status}, {"errorCode", code}, {"errorMessage", answer}}));
}

std::string fleet_service::create_certificate(const request& r, bool from_csr, std::string& code, int& status) {
  json::object in{{"setAsActive", false}};
  if (from_csr) {
    boost::system::error_code ec;
    auto v = json::parse(r.payload, ec);
    auto csr = !ec && v.is_object() ? common::text_member(v.as_object(), "certificateSigningRequest") : std::nullopt;
    if (!csr) {
      code = "InvalidRequest";
      return "the request must be {\"certificateSigningRequest\": \"<PEM CSR>\"}";
    }
    in["certificateSigningRequest"] = *csr;
  }
  auto made = registry_.call(from_csr ? "CreateCertificateFromCsr" : "CreateKeysAndCertificate", in);
  if (made.error) {
    code = made.error->status >= 500 ? "InternalFailure" : "InvalidRequest";
    status = static_cast<int>(made.error->status);
    return made.error->message;
  }
  unsigned char raw[32];
  RAND_bytes(raw, sizeof raw);
  const std::string token_text = common::hex(raw, sizeof raw);
  const std::string certificate_id(common::text_member(made.body, "certificateId").value_or(""));
  token t{certificate_id, clock_.wall_ms() + settings_.token_ttl_ms};
  if (!store_.submit_and_wait({storage::op::put_document{
          {std::string(k_kind), token_text,
           json::serialize(json::object{{"certificateId", t.certificate_id}, {"expiresMs", t.expires_ms}})}}})) {
    code = "InternalFailure";
    status = 500;
    return "the certificate ownership token could not be stored";
  }
  tokens_[token_text] = t;
  certificates_.inc();
  json::object out{{"certificateId", certificate_id},
                   {"certificatePem", made.body.at("certificatePem")},
                   {"certificateOwnershipToken", token_text}};
  if (const auto* keys = common::object_member(made.body, "keyPair")) out["privateKey"] = keys->at("PrivateKey");
  return json::serialize(out);
}

std::string fleet_service::register_thing(const request& r, std::string_view template_name, std::string& code,
                                          int& status) {
  boost::system::error_code ec;
  auto v = json::parse(r.payload, ec);
  if (ec || !v.is_object()) {
    code = "InvalidRequest";
    return "the request must be a JSON object {certificateOwnershipToken, parameters}";
  }
  const auto& in = v.as_object();
  const std::string token_text(common::text_member(in, "certificateOwnershipToken").value_or(""));
  if (token_text.empty()) {
    code = "InvalidCertificateOwnershipToken";
    return "Certificate ownership token cannot be empty.";
  }
  auto token = tokens_.find(token_text);
  if (token == tokens_.end() || token->second.expires_ms <= clock_.wall_ms()) {
    code = "InvalidCertificateOwnershipToken";
    return "the certificate ownership token is not valid (unknown, used, or older than an hour)";
  }
  auto t = templates_.find(template_name);
  if (!t || !t->enabled || t->type != "FLEET_PROVISIONING") {
    code = "ResourceNotFound";
    status = 404;
    return "there is no enabled fleet provisioning template " + std::string(template_name);
  }
  std::string message;
  const auto* version = t->version(t->default_version);
  auto parsed = version ? parse_template(version->body, message) : std::nullopt;
  if (!parsed) {
    code = "InvalidRequest";
    return "template " + t->name + ": " + message;
  }
  std::map<std::string, std::string> parameters;
  if (const auto* ps = common::object_member(in, "parameters"))
    for (const auto& [k, pv] : *ps)
      if (pv.is_string()) parameters[std::string(k)] = std::string(pv.get_string());
  parameters["AWS::IoT::Certificate::Id"] = token->second.certificate_id;
  common::aws_response error;
  auto done = provision(registry_, *parsed, parameters, error);
  if (!done) {
    boost::system::error_code pe;
    auto body = json::parse(error.body, pe);
    code = error.error_type.ends_with("Exception") ? error.error_type.substr(0, error.error_type.size() - 9)
                                                   : error.error_type;
    status = static_cast<int>(error.status);
    return !pe && body.is_object() ? std::string(common::text_member(body.as_object(), "message").value_or(""))
                                   : error.error_type;
  }
  // The token is used: it names no certificate any more.
  store_.submit_and_wait({storage::op::delete_document{std::string(k_kind), token_text}});
  tokens_.erase(token);
  provisioned_.inc();
  FC_LOG_INFO("provisioning.provisioned", "template={} thing={} client={:q}", t->name, done->thing_name,
              common::untrusted(r.client_id));
  json::object configuration;
  for (const auto& [k, val] : done->device_configuration) configuration[k] = val;
  return json::serialize(json::object{{"deviceConfiguration", std::move(configuration)}, {"thingName", done->thing_name}});
}

void fleet_service::expire() {
  const auto now = clock_.wall_ms();
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    if (it->second.expires_ms > now) {
      ++it;
      continue;
    }
    // Never registered: the certificate goes (it is INACTIVE and attached to nothing).
    auto deleted = registry_.call("DeleteCertificate", json::object{{"certificateId", it->second.certificate_id}});
    if (deleted.error && deleted.error->code != "ResourceNotFoundException")
      FC_LOG_WARN("provisioning.expired_certificate_kept", "certificate={} reason={:q}", it->second.certificate_id.substr(0, 12),
                  common::untrusted(deleted.error->message));
    store_.submit_and_wait({storage::op::delete_document{std::string(k_kind), it->first}});
    expired_.inc();
    it = tokens_.erase(it);
  }
}

void fleet_service::register_metrics(common::registry& r) const {
  r.add(certificates_, "fleetcore_provisioning_certificates_total", "", "Certificates made for claim devices (create, create-from-csr).");
  r.add(provisioned_, "fleetcore_provisioning_provisioned_total", "", "Devices provisioned by a fleet provisioning template.");
  r.add(rejected_, "fleetcore_provisioning_rejected_total", "", "Fleet provisioning requests answered on /rejected.");
  r.add(expired_, "fleetcore_provisioning_tokens_expired_total", "",
        "Certificate ownership tokens that expired unused (their certificates deleted).");
}

}  // namespace fleetcore::provisioning
