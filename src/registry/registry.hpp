#pragma once
// The registry: things, thing types, thing groups, certificates, CA certificates, policies and the
// attachments between them, with AWS IoT's rules and API shapes. State lives in memory for fast reads
// from the MQTT workers (certificate checks, policy decisions) and in the store as documents; each
// operation is one atomic store batch, applied in memory only once it is durable.
//
// Threads: operations (`call`) run on one control thread at a time (the API thread; a mutex makes
// that so). Queries marked "any thread" take a shared lock and never wait for the store.
#include "auth/pki.hpp"
#include "auth/policy.hpp"
#include "common/aws_api.hpp"
#include "common/clock.hpp"
#include "common/metrics.hpp"
#include "storage/store.hpp"

#include <boost/json.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <variant>
#include <vector>

namespace fleetcore::registry {

/// An AWS-shaped API error (one type for every module: common/aws_api.hpp).
using api_error = common::aws_error;

/// Outcome of an operation: the response body, or an error.
struct outcome {
  boost::json::object body;
  std::optional<api_error> error;
};

struct settings {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
  std::string endpoint_host = "localhost";  // DescribeEndpoint
  int certificate_days = 365;               // validity of certificates the built-in CA issues
  double thing_type_delete_wait_s = 300;    // AWS: a deprecated thing type can be deleted 5 minutes later
};

struct thing {
  std::string name, id, type;
  std::map<std::string, std::string> attributes;
  std::int64_t version = 1;
};

struct thing_type {
  std::string name, id, description;
  std::vector<std::string> searchable;
  bool deprecated = false;
  double deprecation_date = 0, creation_date = 0;
};

struct thing_group {
  std::string name, id, parent, description;
  std::map<std::string, std::string> attributes;
  std::int64_t version = 1;
  double creation_date = 0;
};

/// A certificate's status, as AWS names it (CertificateStatus).
enum class cert_status : std::uint8_t {
  active,
  inactive,
  revoked,
  pending_transfer,
  register_inactive,
  pending_activation
};
std::string_view to_string(cert_status s);
std::optional<cert_status> parse_cert_status(std::string_view s);

/// A CA certificate's status (CACertificateStatus).
enum class ca_status : std::uint8_t { active, inactive };
std::string_view to_string(ca_status s);
std::optional<ca_status> parse_ca_status(std::string_view s);

struct certificate {
  std::string id, pem;
  cert_status status = cert_status::inactive;
  std::string ca_id;  // empty: the built-in CA or registered without a CA
  std::string mode = "DEFAULT";
  double creation_date = 0, last_modified = 0;
  std::int64_t customer_version = 1;
  std::string generation_id;
  /// A temporary provisioning claim (CreateProvisioningClaim) of this fleet provisioning template:
  /// not listed, and allowed only that template's fleet provisioning topics.
  std::string claim_template;
  // Read from the PEM on load, not stored.
  auth::cert_facts facts;
};

struct ca_certificate {
  std::string id, pem;
  ca_status status = ca_status::inactive;
  std::string auto_registration = "DISABLE";
  std::string role_arn, template_body, template_name;  // registrationConfig
  double creation_date = 0, last_modified = 0;
  std::int64_t customer_version = 1;
  std::string generation_id;
  auth::cert_facts facts;
  std::shared_ptr<X509> x509;
};

struct policy_version {
  std::string document;
  double creation_date = 0;
  std::shared_ptr<const auth::policy_document> parsed;
};

struct policy {
  std::string name;
  std::map<int, policy_version> versions;
  int default_version = 1;
  int next_version = 2;
  double creation_date = 0, last_modified = 0;
  std::string generation_id;
};

/// A many-to-many relation (left, right), indexed both ways: the partners of either side are found
/// without scanning every pair and without allocating.
class relation {
 public:
  using set = std::set<std::string, std::less<>>;
  void insert(const std::string& left, const std::string& right) {
    by_left_[left].insert(right);
    by_right_[right].insert(left);
  }
  void erase(const std::string& left, const std::string& right) {
    drop(by_left_, left, right);
    drop(by_right_, right, left);
  }
  bool contains(std::string_view left, std::string_view right) const { return rights_of(left).contains(right); }
  /// The rights related to `left`, sorted.
  const set& rights_of(std::string_view left) const { return partners(by_left_, left); }
  /// The lefts related to `right`, sorted.
  const set& lefts_of(std::string_view right) const { return partners(by_right_, right); }

 private:
  using index = std::map<std::string, set, std::less<>>;
  static const set& partners(const index& idx, std::string_view key) {
    static const set none;
    auto it = idx.find(key);
    return it == idx.end() ? none : it->second;
  }
  static void drop(index& idx, const std::string& key, const std::string& partner) {
    auto it = idx.find(key);
    if (it == idx.end()) return;
    it->second.erase(partner);
    if (it->second.empty()) idx.erase(it);
  }
  index by_left_, by_right_;
};

/// The AWS event types of UpdateEventConfigurations, in the order DescribeEventConfigurations lists them.
inline constexpr std::string_view event_types[] = {"THING",
                                                   "THING_GROUP",
                                                   "THING_TYPE",
                                                   "THING_GROUP_MEMBERSHIP",
                                                   "THING_GROUP_HIERARCHY",
                                                   "THING_TYPE_ASSOCIATION",
                                                   "JOB",
                                                   "JOB_EXECUTION",
                                                   "POLICY",
                                                   "CERTIFICATE",
                                                   "CA_CERTIFICATE",
                                                   // fleetcore's extension: topic rule changes
                                                   // ($aws/events/rule/<name>/<operation>)
                                                   "TOPIC_RULE"};

/// Which AWS events are published (all off until UpdateEventConfigurations turns them on).
struct event_configurations {
  std::map<std::string, bool, std::less<>> enabled;  // event type -> enabled; absent: off
  double creation_date = 0, last_modified = 0;       // 0: never stored
  bool on(std::string_view type) const {
    auto it = enabled.find(type);
    return it != enabled.end() && it->second;
  }
};

/// The whole registry state; copied never, read under the registry's shared lock. It is a function
/// of the stored documents: only `apply`/`erase` (detail.hpp) change it, on load and on commit.
struct state {
  std::map<std::string, thing> things;
  std::map<std::string, thing_type> thing_types;
  std::map<std::string, thing_group> thing_groups;
  std::map<std::string, certificate> certificates;
  std::map<std::string, ca_certificate> ca_certificates;
  std::map<std::string, policy> policies;
  relation thing_principals;  // (thing, principal ARN)
  relation policy_targets;    // (policy, target ARN)
  relation group_members;     // (group, thing)
  std::map<std::string, std::string, std::less<>> membership_ids;  // pair_key(group, thing) -> membershipId
  std::string registration_code;
  event_configurations events;
};

// --- typed changes, collected per transaction and published after its commit ---

enum class change_op : std::uint8_t { created, updated, deleted };
enum class link_op : std::uint8_t { added, removed };

/// A thing was created, updated or deleted; `value` is the thing after the change (before a deletion).
struct thing_changed {
  change_op op;
  thing value;
};
struct thing_type_changed {
  change_op op;
  thing_type value;
};
/// A thing got (added) or lost (removed) its thing type.
struct thing_type_association {
  link_op op;
  std::string thing, thing_id, thing_type;
};
struct group_ref {
  std::string name, id;
};
struct thing_group_changed {
  change_op op;
  thing_group value;
  std::vector<group_ref> root_to_parent;  // ancestors, the root first
};
struct group_membership {
  link_op op;
  std::string group, group_id, thing, thing_id, membership_id;
};
/// A child group was created under (added) or deleted from (removed) its parent.
struct group_hierarchy {
  link_op op;
  group_ref parent, child;
};
struct thing_principal_changed {
  link_op op;
  std::string thing, principal;
};
struct certificate_changed {
  change_op op;
  std::string id;
  cert_status status;
};
struct ca_certificate_changed {
  change_op op;
  std::string id;
  ca_status status;
};
/// A certificate can no longer connect (it left ACTIVE, was deleted, or its CA left ACTIVE): its live
/// connections must go.
struct certificate_disabled {
  std::string id;
};
struct policy_changed {
  change_op op;
  std::string name;
};
struct policy_attachment {
  link_op op;
  std::string policy, target;
};
struct setting_changed {
  std::string key;
};
using change = std::variant<thing_changed, thing_type_changed, thing_type_association, thing_group_changed,
                            group_membership, group_hierarchy, thing_principal_changed, certificate_changed,
                            ca_certificate_changed, certificate_disabled, policy_changed, policy_attachment,
                            setting_changed>;

/// Receives the changes of one committed transaction, in the order they were applied.
using observer = std::function<void(const std::vector<change>& changes)>;

/// Result of checking a client certificate presented in a TLS handshake.
enum class cert_check {
  accepted,
  unknown,          // neither registered nor signed by a registered CA
  inactive,         // registered, not ACTIVE (INACTIVE, REVOKED, PENDING_*)
  expired,          // outside its validity period
  ca_inactive,      // its CA is registered but not ACTIVE
  pending_jitr,     // just registered as PENDING_ACTIVATION by auto-registration
};
std::string_view to_string(cert_check c);

/// What the authorizer needs for one connection's decisions.
struct principal_view {
  std::vector<std::shared_ptr<const auth::policy_document>> policies;
  std::optional<thing> connection_thing;  // the thing named after the client id, attached to the cert
  std::vector<std::pair<std::string, std::string>> cert_variables;
};

class registry {
 public:
  /// Loads every document from `store`; throws std::runtime_error if one is unreadable.
  registry(settings s, storage::store& store, common::clock& clock, auth::x509_ptr ca, auth::pkey_ptr ca_key);
  ~registry();

  /// Runs the operation `op` (an AWS IoT API name, e.g. "CreateThing") with its input members
  /// (AWS member names, as the service model declares them). Control thread.
  outcome call(std::string_view op, const boost::json::object& input);
  /// The operations `call` implements, sorted (for the API's route binding). Any thread.
  static std::vector<std::string_view> operations();
  // --- any thread ---

  /// Checks the leaf certificate of a TLS client. An unknown certificate signed by an ACTIVE CA with
  /// auto-registration is registered as PENDING_ACTIVATION (asynchronously, via `defer`) and the
  /// event published; it is still refused.
  cert_check check_client_certificate(X509* leaf);
  /// The policies and variables for a connection of `certificate_id` with `client_id`.
  principal_view principal_for(std::string_view certificate_id, std::string_view client_id) const;
  /// What a provisioning claim of `template_name` may do: connect, and that template's fleet
  /// provisioning topics (create, create-from-csr, provision).
  std::shared_ptr<const auth::policy_document> claim_policy(const std::string& template_name) const;
  /// The default version of policy `name`, if it exists.
  std::shared_ptr<const auth::policy_document> policy_named(std::string_view name) const;
  /// Bumped after every change that can change a decision or a certificate check.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  /// Whether thing `name` exists.
  bool has_thing(std::string_view name) const;
  /// The things of group `group` and of its descendant groups, sorted, each once; nullopt if there is
  /// no such group (a job's group target).
  std::optional<std::vector<std::string>> things_in_group_tree(std::string_view group) const;
  /// The groups `thing` belongs to, directly or through a descendant group (the groups whose jobs it
  /// is a target of).
  std::vector<std::string> group_tree_of(std::string_view thing) const;

  std::string arn(std::string_view kind, std::string_view name) const;
  /// Whether UpdateEventConfigurations enabled event type `type` (for the services' own events).
  bool event_enabled(std::string_view type) const;
  const settings& config() const noexcept { return settings_; }
  X509* ca() const noexcept { return ca_.get(); }

  // --- wiring, set before use ---

  /// Runs a function on the control thread (JIT registration comes from the MQTT workers).
  std::function<void(std::function<void()>)> defer;
  /// Runs on the control thread after a certificate was auto-registered (JITR) and its event
  /// published: just-in-time provisioning by the CA's registrationConfig.
  std::function<void(const std::string& certificate_id, const std::string& ca_id)> auto_registered;
  /// Publishes a server event (topic, JSON payload) into the broker: the JITR event and the AWS
  /// registry events (registry-events.md) that DescribeEventConfigurations shows enabled.
  std::function<void(std::string topic, std::string payload)> publish_event;

  /// Cluster: after every committed transaction, its document writes (control thread), for the other
  /// nodes to apply (apply_replica).
  std::function<void(const std::vector<storage::operation>& writes)> replicate;
  /// Applies document writes another node committed to the shared store: the state changes as if
  /// they were committed here, the generation is bumped (cached decisions go stale), and the
  /// observers run with replaying() true. Any thread (takes the control mutex).
  void apply_replica(const std::vector<storage::operation>& writes);
  /// True while observers see another node's changes: what a change causes once for the cluster (an
  /// AWS registry event, a job's reaction) was done by that node. Control thread.
  bool replaying() const noexcept { return replaying_; }

  /// Adds an observer of committed changes. Observers run on the control thread after every
  /// committed transaction with changes, in the order added, once the in-memory state shows the
  /// change. The state lock is free, so they may query the registry; the control mutex is held, so
  /// they must not call operations (`defer` one instead). A failed commit notifies no one. Add
  /// observers before use (wiring): the list is not locked.
  void observe(observer fn) { observers_.push_back(std::move(fn)); }

  void register_metrics(common::registry& r) const;

  // The operations, defined in things.cpp, certificates.cpp and policies.cpp (see detail.hpp).
  class tx;
  struct ops;

 private:
  friend struct ops;

  bool commit(tx& t);
  /// Applies committed document writes to the state, then tells the observers.
  void apply_committed(const std::vector<storage::operation>& writes);
  void register_pending(std::string pem, std::string ca_id);
  double now() const;
  std::string new_id();
  void load();
  void publish_aws_events(const std::vector<change>& changes);

  settings settings_;
  storage::store& store_;
  common::clock& clock_;
  auth::x509_ptr ca_;
  auth::pkey_ptr ca_key_;

  std::mutex control_mutex_;            // one operation at a time
  mutable std::shared_mutex state_mutex_;  // guards st_ against the workers' reads
  state st_;
  std::atomic<std::uint64_t> generation_{1};
  std::vector<observer> observers_;
  bool replaying_ = false;
  std::set<std::string> jitr_pending_;  // certificate ids being auto-registered (control thread)
  std::mutex jitr_mutex_;

  common::counter api_calls_, api_errors_, jitr_registered_, cert_refusals_, events_published_;
};

}  // namespace fleetcore::registry
