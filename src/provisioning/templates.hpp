#pragma once
// Provisioning templates as AWS IoT keeps them (botocore `iot`): CreateProvisioningTemplate,
// DescribeProvisioningTemplate, ListProvisioningTemplates, UpdateProvisioningTemplate,
// DeleteProvisioningTemplate, and their versions (CreateProvisioningTemplateVersion,
// DescribeProvisioningTemplateVersion, ListProvisioningTemplateVersions,
// DeleteProvisioningTemplateVersion): at most 5 versions, one of them the default; every body is
// parsed (template.hpp) before it is kept. Types FLEET_PROVISIONING (the default) and JITP; a
// pre-provisioning hook only on fleet provisioning templates.
//
// Threads: operations on the API thread; `find` from any thread (a shared lock).
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "provisioning/template.hpp"
#include "storage/store.hpp"

#include <boost/json/object.hpp>

#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

namespace fleetcore::provisioning {

struct template_version {
  std::int64_t id = 1;
  std::string body;
  std::int64_t created_ms = 0;
};

struct provisioning_template {
  std::string name, description, role_arn;
  std::string type = "FLEET_PROVISIONING";
  bool enabled = false;
  std::optional<std::string> hook_target;  // preProvisioningHook.targetArn (an ARN or an https:// URL)
  std::string hook_payload_version = "2020-04-01";
  std::int64_t default_version = 1, next_version = 2;
  std::vector<template_version> versions;  // oldest first
  std::int64_t created_ms = 0, modified_ms = 0;

  const template_version* version(std::int64_t id) const;
  std::string to_json() const;
  static std::optional<provisioning_template> from_json(std::string_view body);
};

class template_service {
 public:
  /// Loads the stored templates; throws std::runtime_error if one is unreadable. `arn_prefix` is
  /// `arn:aws:iot:<region>:<account>:`.
  template_service(storage::store& store, common::clock& clock, std::string arn_prefix);

  static std::vector<std::string_view> operations();
  /// Runs an operation. API thread.
  common::aws_response call(std::string_view op, const boost::json::object& in);

  /// A template by name, as it is now. Any thread.
  std::shared_ptr<const provisioning_template> find(std::string_view name) const;
  std::string arn(std::string_view name) const { return arn_prefix_ + "provisioningtemplate/" + std::string(name); }

 private:
  common::aws_response create(const boost::json::object& in);
  common::aws_response describe(const boost::json::object& in) const;
  common::aws_response list(const boost::json::object& in) const;
  common::aws_response update(const boost::json::object& in);
  common::aws_response remove(const boost::json::object& in);
  common::aws_response create_version(const boost::json::object& in);
  common::aws_response describe_version(const boost::json::object& in) const;
  common::aws_response list_versions(const boost::json::object& in) const;
  common::aws_response delete_version(const boost::json::object& in);
  /// Stores `t` and makes it the current one; false if the store failed.
  bool save(provisioning_template t);

  storage::store& store_;
  common::clock& clock_;
  std::string arn_prefix_;
  mutable std::shared_mutex mutex_;
  std::map<std::string, std::shared_ptr<const provisioning_template>, std::less<>> templates_;
};

}  // namespace fleetcore::provisioning
