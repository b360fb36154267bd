#pragma once
// Internals shared by the registry's operation files: the transaction builder, input accessors,
// AWS error helpers, name rules and document (de)serialization.
#include "common/aws_names.hpp"
#include "common/aws_paging.hpp"
#include "common/json_members.hpp"
#include "registry/arn.hpp"
#include "registry/registry.hpp"

#include <boost/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::registry {

namespace json = boost::json;

/// Key of a relation document.
inline std::string pair_key(std::string_view a, std::string_view b) {
  std::string k(a);
  k += '\t';
  k += b;
  return k;
}

/// One operation's writes: the documents for one store batch. Once the batch is durable, the same
/// documents are applied to the in-memory state by `apply`/`erase`, as `load()` applies them.
class registry::tx {
 public:
  void put(std::string kind, std::string key, std::string body) {
    ops.push_back(storage::op::put_document{{std::move(kind), std::move(key), std::move(body)}});
  }
  void erase(std::string kind, std::string key) {
    ops.push_back(storage::op::delete_document{std::move(kind), std::move(key)});
  }
  /// Relates `left` and `right` (stored as document `kind`, with `body`).
  void link(const char* kind, const std::string& left, const std::string& right, std::string body = "{}") {
    put(kind, pair_key(left, right), std::move(body));
  }
  void unlink(const char* kind, const std::string& left, const std::string& right) {
    erase(kind, pair_key(left, right));
  }
  bool empty() const noexcept { return ops.empty(); }

  std::vector<storage::operation> ops;
};

// Document kinds.
inline constexpr const char* k_thing = "thing";
inline constexpr const char* k_thing_type = "thing_type";
inline constexpr const char* k_thing_group = "thing_group";
inline constexpr const char* k_certificate = "certificate";
inline constexpr const char* k_ca_certificate = "ca_certificate";
inline constexpr const char* k_policy = "policy";
inline constexpr const char* k_thing_principal = "thing_principal";
inline constexpr const char* k_policy_target = "policy_target";
inline constexpr const char* k_group_member = "group_member";
inline constexpr const char* k_setting = "setting";
inline constexpr const char* k_all_kinds[] = {k_thing,        k_thing_type,      k_thing_group,
                                              k_certificate,  k_ca_certificate,  k_policy,
                                              k_thing_principal, k_policy_target, k_group_member,
                                              k_setting};
// Keys of `setting` documents.
inline constexpr const char* s_registration_code = "registration_code";
inline constexpr const char* s_event_configurations = "event_configurations";

/// Applies one stored document to `st`: with `erase`, the only way the registry's state changes,
/// on load and after a commit. Appends the typed changes it makes to `out` when given (the state
/// before the document tells created from updated). False if the document is unreadable; `st` is
/// then unchanged.
bool apply(state& st, const storage::document& d, std::vector<change>* out);
/// Removes the record `kind`/`key` from `st` (nothing if absent), appending its changes to `out`.
void erase(state& st, std::string_view kind, std::string_view key, std::vector<change>* out);

inline outcome fail(std::string code, unsigned status, std::string message) {
  return outcome{{}, api_error{std::move(code), status, std::move(message)}};
}
inline outcome invalid(std::string message) { return fail("InvalidRequestException", 400, std::move(message)); }
inline outcome not_found(std::string message) { return fail("ResourceNotFoundException", 404, std::move(message)); }
inline outcome already_exists(std::string message) {
  return fail("ResourceAlreadyExistsException", 409, std::move(message));
}
inline outcome conflict(std::string message) { return fail("VersionConflictException", 409, std::move(message)); }
inline outcome delete_conflict(std::string message) { return fail("DeleteConflictException", 409, std::move(message)); }
inline outcome internal() { return fail("InternalFailureException", 500, "the change could not be stored"); }
inline outcome ok(json::object body = {}) { return outcome{std::move(body), std::nullopt}; }

// Input accessors: AWS member names; nullopt when absent; a wrong JSON type is absent too (the
// SDKs validate types before sending).
// (common/json_members.hpp; `text` owns its string for the registry's records).
inline std::optional<std::string> text(const json::object& in, std::string_view key) {
  auto v = common::text_member(in, key);
  return v ? std::optional<std::string>(*v) : std::nullopt;
}
using common::bool_member;
using common::int_member;
using common::object_member;

/// Page of `names` (sorted) after `token` (common/aws_paging.hpp).
using common::page_after;
/// Validates maxResults/pageSize in [1, limit]; default `def`.
inline std::optional<outcome> page_size(const json::object& in, std::string_view key, std::int64_t limit,
                                        std::int64_t& out, std::int64_t def) {
  if (auto e = common::page_size(in, key, limit, def, out)) return outcome{{}, std::move(*e)};
  return std::nullopt;
}

// AWS name rules (thing names: common/aws_names.hpp).
using common::valid_thing_name;
bool valid_policy_name(std::string_view s);   // [\w+=,.@-]{1,128}
bool valid_attribute_name(std::string_view s);
bool valid_attribute_value(std::string_view s);
/// Reads an attributePayload {"attributes": {...}, "merge": bool} into `attrs`; error if invalid.
std::optional<outcome> apply_attribute_payload(const json::object* payload, std::map<std::string, std::string>& attrs,
                                               bool replace_default);

// Serialization of stored records.
std::string to_doc(const thing& t);
std::string to_doc(const thing_type& t);
std::string to_doc(const thing_group& g);
std::string to_doc(const certificate& c);
std::string to_doc(const ca_certificate& c);
std::string to_doc(const policy& p);
std::string to_doc(const event_configurations& e);
thing thing_from(const json::object& o);
thing_type thing_type_from(const json::object& o);
thing_group thing_group_from(const json::object& o);
certificate certificate_from(const json::object& o);
ca_certificate ca_certificate_from(const json::object& o);
policy policy_from(const json::object& o);
event_configurations event_configurations_from(const json::object& o);

/// Operations by area; each returns the response body or an AWS error. `r` is the registry whose
/// control mutex the caller holds.
struct registry::ops {
  using fn = outcome (*)(registry& r, const json::object& in);
  static const std::map<std::string, fn, std::less<>>& table();

  static const state& st(const registry& r) { return r.st_; }
  static bool commit(registry& r, tx& t) { return r.commit(t); }
  static double now(const registry& r) { return r.now(); }
  static std::string new_id(registry& r) { return r.new_id(); }
  static EVP_PKEY* ca_key(registry& r) { return r.ca_key_.get(); }

  // things.cpp
  static void add_thing_ops(std::map<std::string, fn, std::less<>>& t);
  // certificates.cpp
  static void add_certificate_ops(std::map<std::string, fn, std::less<>>& t);
  // policies.cpp
  static void add_policy_ops(std::map<std::string, fn, std::less<>>& t);
  // events.cpp
  static void add_event_ops(std::map<std::string, fn, std::less<>>& t);
  // provision.cpp
  static void add_provision_ops(std::map<std::string, fn, std::less<>>& t);
};

/// The thing groups of `thing` and all their ancestors, each once: whose policies the thing inherits.
std::vector<std::string> groups_with_ancestors(const state& s, const std::string& thing);

/// Principal ARN of a certificate id.
inline std::string cert_arn(const registry& r, std::string_view id) { return r.arn("cert", id); }
/// The certificate id of a certificate ARN, or empty.
std::string cert_id_of_arn(std::string_view arn);
/// Epoch seconds (with fraction) as botocore reads timestamps in restJson bodies.
inline json::value timestamp(double t) { return json::value(t); }

}  // namespace fleetcore::registry
