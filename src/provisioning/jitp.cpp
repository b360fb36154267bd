#include "provisioning/jitp.hpp"

#include "auth/pki.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "provisioning/provisioner.hpp"

#include <boost/json/parse.hpp>

namespace fleetcore::provisioning {

namespace json = boost::json;

namespace {
constexpr std::string_view k_prefix = "AWS::IoT::Certificate::";
}

std::map<std::string, std::string> jitp_parameters(const std::vector<std::pair<std::string, std::string>>& variables,
                                                   const std::string& certificate_id) {
  // The subject fields JITP documents, by the names auth::facts_of gives them.
  static const std::pair<std::string_view, std::string_view> fields[] = {
      {"Subject.Country", "Country"},
      {"Subject.Organization", "Organization"},
      {"Subject.OrganizationalUnit", "OrganizationalUnit"},
      {"Subject.DistinguishedNameQualifier", "DistinguishedNameQualifier"},
      {"Subject.State", "StateName"},
      {"Subject.CommonName", "CommonName"},
      {"Subject.SerialNumber", "SerialNumber"},
  };
  std::map<std::string, std::string> out;
  for (const auto& [variable, value] : variables)
    for (auto [from, to] : fields)
      if (variable == from) out[std::string(k_prefix) + std::string(to)] = value;
  out[std::string(k_prefix) + "Id"] = certificate_id;
  return out;
}

jitp_service::jitp_service(registry::registry& reg, template_service& templates) : registry_(reg), templates_(templates) {}

void jitp_service::provision(const std::string& certificate_id, const std::string& ca_id) {
  auto ca = registry_.call("DescribeCACertificate", json::object{{"certificateId", ca_id}});
  if (ca.error) return;
  const auto* config = common::object_member(ca.body, "registrationConfig");
  if (!config) return;  // JITR only: the operator (or a rule on the event) takes it from here
  auto fail = [&](const std::string& why) {
    failed_.inc();
    FC_LOG_WARN("provisioning.jitp_failed", "certificate={} ca={} reason={:q}", certificate_id.substr(0, 12),
                ca_id.substr(0, 12), common::untrusted(why));
  };
  std::string body, source;
  if (auto name = common::text_member(*config, "templateName"); name && !name->empty()) {
    auto t = templates_.find(*name);
    if (!t) return fail("the CA's provisioning template " + std::string(*name) + " does not exist");
    if (t->type != "JITP") return fail("provisioning template " + t->name + " is not a JITP template");
    const auto* v = t->version(t->default_version);
    if (!v) return fail("provisioning template " + t->name + " has no default version");
    body = v->body;
    source = "template " + t->name;
  } else if (auto text = common::text_member(*config, "templateBody"); text && !text->empty()) {
    body = *text;
    source = "the CA's templateBody";
  } else {
    return;
  }
  std::string error;
  auto parsed = parse_template(body, error);
  if (!parsed) return fail(source + ": " + error);

  auto described = registry_.call("DescribeCertificate", json::object{{"certificateId", certificate_id}});
  const auto* d = common::object_member(described.body, "certificateDescription");
  auto x509 = d ? auth::parse_pem_cert(common::text_member(*d, "certificatePem").value_or("")) : nullptr;
  if (!x509) return fail("the auto-registered certificate is gone");
  auto parameters = jitp_parameters(auth::facts_of(x509.get()).variables, certificate_id);
  for (const auto& declared : declared_parameters(*parsed))
    if (std::string_view(declared).starts_with(k_prefix) && !parameters.contains(declared))
      return fail(source + " declares " + declared + ", which the certificate's subject does not have");

  common::aws_response refused;
  auto done = provision_certificate(registry_, *parsed, std::move(parameters), certificate_id, refused);
  if (!done) return fail(source + ": " + refused.error_type + " " + refused.body);
  provisioned_.inc();
  FC_LOG_INFO("provisioning.jitp", "certificate={} ca={} thing={:q} by={:q}", certificate_id.substr(0, 12),
              ca_id.substr(0, 12), common::untrusted(done->thing_name), common::untrusted(source));
}

void jitp_service::register_metrics(common::registry& r) const {
  r.add(provisioned_, "fleetcore_provisioning_jitp_provisioned_total", "",
        "Devices provisioned just in time by their CA's registrationConfig.");
  r.add(failed_, "fleetcore_provisioning_jitp_failed_total", "",
        "Just-in-time provisionings that failed (the certificate stays PENDING_ACTIVATION).");
}

}  // namespace fleetcore::provisioning
