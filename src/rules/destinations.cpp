#include "rules/destinations.hpp"

#include <boost/asio/post.hpp>

#include "common/aws_paging.hpp"
#include "common/json_members.hpp"
#include "common/log.hpp"
#include "net/http_client.hpp"
#include "common/uuid.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <openssl/rand.h>


namespace fleetcore::rules {

namespace json = boost::json;
using common::aws_response;

namespace {

constexpr std::string_view k_kind = destinations::document_kind;

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

aws_response not_found(std::string_view arn) {
  return aws_response::error(404, "ResourceNotFoundException", fmt::format("Destination {} does not exist", arn));
}

}  // namespace

destinations::destinations(storage::store& store, common::clock& clock, std::string arn_prefix,
                           boost::asio::io_context& io, net::http_client& http)
    : store_(store), clock_(clock), arn_prefix_(std::move(arn_prefix)), io_(io), http_(http) {
  for (auto& doc : store_.load_documents(std::string(k_kind)))
    if (auto d = from_document(doc.key, doc.body)) by_arn_.emplace(d->arn, std::move(*d));
}

std::optional<destinations::destination> destinations::from_document(const std::string& arn, const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  destination d;
  d.arn = arn;
  d.status = std::string(common::text_member(o, "status").value_or("IN_PROGRESS"));
  d.status_reason = std::string(common::text_member(o, "statusReason").value_or(""));
  d.confirmation_url = std::string(common::text_member(o, "confirmationUrl").value_or(""));
  if (const auto* vpc = common::object_member(o, "vpc")) d.vpc = *vpc;
  d.token = std::string(common::text_member(o, "token").value_or(""));
  d.created_at = common::number_member(o, "createdAt").value_or(0);
  d.updated_at = common::number_member(o, "lastUpdatedAt").value_or(0);
  return d;
}

void destinations::apply_replica(const storage::operation& op) {
  std::lock_guard lock(mutex_);
  if (const auto* put = std::get_if<storage::op::put_document>(&op)) {
    if (auto d = from_document(put->doc.key, put->doc.body)) by_arn_.insert_or_assign(d->arn, std::move(*d));
  } else if (const auto* del = std::get_if<storage::op::delete_document>(&op)) {
    by_arn_.erase(del->key);
  }
}

bool destinations::commit(storage::operation op) {
  std::vector<storage::operation> ops{std::move(op)};
  if (!store_.submit_and_wait(ops)) return false;
  if (replicate) replicate(ops);
  return true;
}

bool destinations::enabled_for(std::string_view url) const {
  std::lock_guard lock(mutex_);
  for (const auto& [arn, d] : by_arn_)
    if (d.status == "ENABLED" && !d.confirmation_url.empty() && url.starts_with(d.confirmation_url)) return true;
  return false;
}

std::string destinations::to_document(const destination& d) {
  json::object o{{"status", d.status},   {"statusReason", d.status_reason}, {"confirmationUrl", d.confirmation_url},
                 {"token", d.token},     {"createdAt", d.created_at},       {"lastUpdatedAt", d.updated_at}};
  if (!d.vpc.empty()) o["vpc"] = d.vpc;
  return json::serialize(o);
}

json::object destinations::describe(const destination& d) {
  json::object o{{"arn", d.arn}, {"status", d.status}, {"createdAt", d.created_at}, {"lastUpdatedAt", d.updated_at}};
  if (!d.status_reason.empty()) o["statusReason"] = d.status_reason;
  if (!d.confirmation_url.empty()) o["httpUrlProperties"] = json::object{{"confirmationUrl", d.confirmation_url}};
  if (!d.vpc.empty()) o["vpcProperties"] = d.vpc;
  return o;
}

bool destinations::store_one(const destination& d) {
  return commit(storage::op::put_document{{std::string(k_kind), d.arn, to_document(d)}});
}

void destinations::send_confirmation(const destination& d) {
  // AWS's confirmation request (rule-destination.md); the receiver answers with the token through
  // ConfirmTopicRuleDestination.
  net::http_request req;
  req.url = d.confirmation_url;
  std::string sep = req.url.find('?') == std::string::npos ? "?" : "&";
  req.url += sep + "confirmationToken=" + d.token;
  req.headers = {{"content-type", "application/json"},
                 {"x-amz-rules-engine-message-type", "DestinationConfirmation"},
                 {"x-amz-rules-engine-destination-arn", d.arn}};
  req.body = json::serialize(json::object{{"arn", d.arn},
                                          {"confirmationToken", d.token},
                                          {"enableUrl", api_url_ + "/confirmdestination/" + d.token},
                                          {"messageType", "DestinationConfirmation"}});
  boost::asio::post(io_, [this, req = std::move(req), arn = d.arn]() mutable {
    http_.post(std::move(req), std::chrono::seconds(10), [arn](net::http_outcome o) {
      if (o.status >= 200 && o.status < 300)
        FC_LOG_INFO("rules.destination_confirmation_sent", "arn={} status={}", arn, o.status);
      else
        FC_LOG_WARN("rules.destination_confirmation_failed", "arn={} error={:q}", arn, common::untrusted(o.error));
    });
  });
}

aws_response destinations::create(const json::object& in) {
  const auto* config = common::object_member(in, "destinationConfiguration");
  if (!config) return aws_response::error(400, "InvalidRequestException", "destinationConfiguration is required");
  destination d;
  d.created_at = d.updated_at = static_cast<double>(clock_.wall_ms()) / 1000.0;
  if (const auto* http = common::object_member(*config, "httpUrlConfiguration")) {
    auto url = common::text_member(*http, "confirmationUrl");
    if (!url || !(url->starts_with("https://") || url->starts_with("http://")))
      return aws_response::error(400, "InvalidRequestException", "confirmationUrl must be an https URL");
    d.confirmation_url = std::string(*url);
    d.arn = arn_prefix_ + "ruledestination/http/" + common::random_uuid();
    d.status = "IN_PROGRESS";
    d.token = random_hex(32);
  } else if (const auto* vpc = common::object_member(*config, "vpcConfiguration")) {
    d.vpc = *vpc;
    d.arn = arn_prefix_ + "ruledestination/vpc/" + common::random_uuid();
    d.status = "ENABLED";
  } else {
    return aws_response::error(400, "InvalidRequestException", "httpUrlConfiguration or vpcConfiguration is required");
  }
  std::lock_guard lock(mutex_);
  for (const auto& [arn, other] : by_arn_)
    if (!d.confirmation_url.empty() && other.confirmation_url == d.confirmation_url)
      return aws_response::error(409, "ResourceAlreadyExistsException",
                                 "a destination with this confirmationUrl already exists");
  if (!store_one(d)) return aws_response::error(500, "InternalFailureException", "the destination could not be stored");
  if (!d.confirmation_url.empty()) send_confirmation(d);
  auto body = json::serialize(json::object{{"topicRuleDestination", describe(d)}});
  by_arn_.emplace(d.arn, std::move(d));
  return aws_response::ok(std::move(body));
}

aws_response destinations::get(const json::object& in) {
  auto arn = common::text_member(in, "arn").value_or("");
  std::lock_guard lock(mutex_);
  auto it = by_arn_.find(arn);
  if (it == by_arn_.end()) return not_found(arn);
  return aws_response::ok(json::serialize(json::object{{"topicRuleDestination", describe(it->second)}}));
}

aws_response destinations::list(const json::object& in) {
  std::int64_t max = 0;
  if (auto e = common::page_size(in, "maxResults", 1000, 1000, max)) return aws_response::from(*e);
  std::optional<std::string> token, next;
  if (auto t = common::text_member(in, "nextToken")) token = std::string(*t);
  std::lock_guard lock(mutex_);
  std::vector<std::string> arns;
  for (const auto& [arn, d] : by_arn_) arns.push_back(arn);
  json::array out;
  for (const auto& arn : common::page_after(arns, token, max, next)) {
    const auto& d = by_arn_.at(arn);
    json::object s{{"arn", d.arn}, {"status", d.status}, {"createdAt", d.created_at}, {"lastUpdatedAt", d.updated_at}};
    if (!d.status_reason.empty()) s["statusReason"] = d.status_reason;
    if (!d.confirmation_url.empty()) s["httpUrlSummary"] = json::object{{"confirmationUrl", d.confirmation_url}};
    if (!d.vpc.empty()) s["vpcDestinationSummary"] = d.vpc;
    out.push_back(std::move(s));
  }
  json::object body{{"destinationSummaries", std::move(out)}};
  if (next) body["nextToken"] = *next;
  return aws_response::ok(json::serialize(body));
}

aws_response destinations::update(const json::object& in) {
  auto arn = common::text_member(in, "arn").value_or("");
  auto status = common::text_member(in, "status").value_or("");
  if (status != "ENABLED" && status != "DISABLED" && status != "IN_PROGRESS")
    return aws_response::error(400, "InvalidRequestException", "status must be ENABLED, DISABLED or IN_PROGRESS");
  std::lock_guard lock(mutex_);
  auto it = by_arn_.find(arn);
  if (it == by_arn_.end()) return not_found(arn);
  auto d = it->second;
  // ENABLED <-> DISABLED once confirmed; IN_PROGRESS sends a new confirmation (a new token).
  if (status == "IN_PROGRESS") {
    if (d.confirmation_url.empty())
      return aws_response::error(400, "InvalidRequestException", "a VPC destination has no confirmation");
    d.token = random_hex(32);
  } else if (d.status == "IN_PROGRESS" || d.status == "ERROR") {
    return aws_response::error(400, "InvalidRequestException",
                               "the destination is not confirmed: confirm it with ConfirmTopicRuleDestination");
  }
  d.status = std::string(status);
  d.updated_at = static_cast<double>(clock_.wall_ms()) / 1000.0;
  if (!store_one(d)) return aws_response::error(500, "InternalFailureException", "the destination could not be stored");
  if (d.status == "IN_PROGRESS") send_confirmation(d);
  it->second = std::move(d);
  return aws_response::ok("{}");
}

aws_response destinations::remove(const json::object& in) {
  auto arn = common::text_member(in, "arn").value_or("");
  std::lock_guard lock(mutex_);
  auto it = by_arn_.find(arn);
  if (it == by_arn_.end()) return not_found(arn);
  if (!commit(storage::op::delete_document{std::string(k_kind), std::string(arn)}))
    return aws_response::error(500, "InternalFailureException", "the destination could not be deleted");
  by_arn_.erase(it);
  return aws_response::ok("{}");
}

aws_response destinations::confirm(const json::object& in) {
  return confirm_token(common::text_member(in, "confirmationToken").value_or(""), "ENABLED");
}

aws_response destinations::enable_by_url(std::string_view token) { return confirm_token(token, "DISABLED"); }

aws_response destinations::confirm_token(std::string_view token, std::string_view status) {
  std::lock_guard lock(mutex_);
  for (auto& [arn, d] : by_arn_) {
    if (d.token.empty() || d.token != token) continue;
    if (d.status != "IN_PROGRESS")
      return aws_response::error(409, "ConflictingResourceUpdateException", "the destination is already confirmed");
    auto next = d;
    next.status = std::string(status);
    next.updated_at = static_cast<double>(clock_.wall_ms()) / 1000.0;
    if (!store_one(next))
      return aws_response::error(500, "InternalFailureException", "the destination could not be stored");
    d = std::move(next);
    FC_LOG_INFO("rules.destination_confirmed", "arn={}", arn);
    return aws_response::ok("{}");
  }
  return aws_response::error(400, "InvalidRequestException", "the confirmation token is not valid");
}

common::aws_operations destinations::operations() {
  auto op = [this](aws_response (destinations::*fn)(const json::object&)) {
    return [this, fn](std::string_view, const json::object& in) { return (this->*fn)(in); };
  };
  return {{"CreateTopicRuleDestination", op(&destinations::create)},
          {"GetTopicRuleDestination", op(&destinations::get)},
          {"ListTopicRuleDestinations", op(&destinations::list)},
          {"UpdateTopicRuleDestination", op(&destinations::update)},
          {"DeleteTopicRuleDestination", op(&destinations::remove)},
          {"ConfirmTopicRuleDestination", op(&destinations::confirm)}};
}

}  // namespace fleetcore::rules
