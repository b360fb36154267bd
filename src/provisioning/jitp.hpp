#pragma once
// Just-in-time provisioning (the Guide's jit-provisioning.md): a CA registered with auto-registration
// and a registrationConfig — a templateBody, or the templateName of a JITP provisioning template —
// provisions a device the first time it presents a certificate that CA signed. The TLS handshake is
// refused and the certificate registered PENDING_ACTIVATION as for JITR (its event published); then
// the template is evaluated with the certificate's subject as AWS::IoT::Certificate::{Country,
// Organization, OrganizationalUnit, DistinguishedNameQualifier, StateName, CommonName, SerialNumber}
// and AWS::IoT::Certificate::Id, and its thing, policies and certificate status provisioned in one
// transaction. The device connects on its next attempt. A template that declares a subject field the
// certificate lacks fails, as on AWS (logged and counted; the certificate stays PENDING_ACTIVATION).
//
// Threads: the registry's control thread (registry::auto_registered).
#include "common/metrics.hpp"
#include "provisioning/templates.hpp"
#include "registry/registry.hpp"

#include <map>
#include <string>
#include <vector>

namespace fleetcore::provisioning {

/// The JITP parameters of a certificate: AWS::IoT::Certificate::* from its subject's variables
/// (auth::cert_facts, "Subject.CommonName"...) and its id.
std::map<std::string, std::string> jitp_parameters(const std::vector<std::pair<std::string, std::string>>& variables,
                                                   const std::string& certificate_id);

class jitp_service {
 public:
  jitp_service(registry::registry& reg, template_service& templates);
  /// Provisions an auto-registered certificate by its CA's registrationConfig, if it has one.
  void provision(const std::string& certificate_id, const std::string& ca_id);
  void register_metrics(common::registry& r) const;

 private:
  registry::registry& registry_;
  template_service& templates_;
  common::counter provisioned_, failed_;
};

}  // namespace fleetcore::provisioning
