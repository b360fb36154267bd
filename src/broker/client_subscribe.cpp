// SUBSCRIBE and UNSUBSCRIBE.
#include "broker/client_connection.hpp"

#include "broker/broker.hpp"
#include "common/log.hpp"
#include "mqtt/topic.hpp"

namespace fleetcore::broker {

using mqtt::reason_code;
using mqtt::protocol_version;

void client_connection::handle_subscribe(mqtt::subscribe_packet& p) {
  const auto& cfg = broker_.cfg();
  const bool v5 = version_ == protocol_version::v5;
  std::uint32_t sub_id = 0;
  if (!p.props.subscription_identifiers.empty()) {
    if (!cfg.subscription_identifier_available)
      return protocol_violation(reason_code::subscription_identifiers_not_supported, "subscription id");
    sub_id = p.props.subscription_identifiers.front();
  }
  mqtt::suback_packet ack;
  ack.packet_id = p.packet_id;
  std::vector<broker::route_change> changes;
  struct retained_request {
    std::string filter;
    subscription_options opts;
  };
  auto retained = std::make_shared<std::vector<retained_request>>();
  std::size_t count = session_->subscriptions.size();
  for (auto& r : p.subscriptions) {
    auto shared = mqtt::parse_shared(r.filter);
    std::string_view filter = shared ? shared->filter : std::string_view(r.filter);
    reason_code rc = static_cast<reason_code>(std::min<std::uint8_t>(r.qos, 2));
    if (shared && r.no_local) return protocol_violation(reason_code::protocol_error, "no local on shared");
    if (!mqtt::valid_topic_filter(filter) || (shared && shared->group.empty()) ||
        r.filter.size() > cfg.max_topic_length || mqtt::topic_levels(filter) > cfg.max_topic_levels) {
      rc = reason_code::topic_filter_invalid;
    } else if (shared && !cfg.shared_subscription_available) {
      rc = reason_code::shared_subscriptions_not_supported;
    } else if (!cfg.wildcard_subscription_available && filter.find_first_of("+#") != std::string_view::npos) {
      rc = reason_code::wildcard_subscriptions_not_supported;
    } else if (broker_.consumed_filter(filter) ||
               broker_.policy().authorize_subscribe(info_, client_id_, r.filter) != reason_code::success) {
      // A consumed prefix (Basic Ingest) reaches no subscriber: refused like a denied filter.
      broker_.stats().denied.inc();
      rc = reason_code::not_authorized;
    } else {
      auto existing = session_->subscriptions.find(r.filter);
      if (existing == session_->subscriptions.end() && count >= cfg.max_subscriptions_per_client) {
        rc = reason_code::quota_exceeded;
      } else {
        subscription_options opts{static_cast<std::uint8_t>(rc), r.no_local, r.retain_as_published, r.handling, sub_id};
        bool is_new = existing == session_->subscriptions.end();
        if (is_new) {
          ++count;
          broker_.stats().subscriptions.add();
        }
        session_->subscriptions.insert_or_assign(r.filter, opts);
        changes.push_back({r.filter, opts, true});
        if (r.handling == mqtt::retain_handling::send || (r.handling == mqtt::retain_handling::send_if_new && is_new))
          retained->push_back({r.filter, opts});
      }
    }
    ack.reasons.push_back(rc);
  }
  if (!v5) {
    for (auto& rc : ack.reasons)
      if (static_cast<std::uint8_t>(rc) > 2) rc = reason_code::unspecified_error;
  }
  auto self = shared_from_this();
  std::vector<std::string> granted;
  for (const auto& c : changes) granted.push_back(c.filter);
  broker_.update_routes(worker_, session_, std::move(changes),
                        [self, ack = std::move(ack), retained, granted = std::move(granted)] {
                          if (self->state_ != state::connected) return;
                          self->send(ack);
                          for (auto& r : *retained) self->broker_.send_retained(*self->session_, r.filter, r.opts);
                          if (!granted.empty())
                            for (auto* h : self->broker_.hooks()) h->on_subscribed(self->hook_view(), granted);
                        });
}

void client_connection::handle_unsubscribe(mqtt::unsubscribe_packet& p) {
  mqtt::unsuback_packet ack;
  ack.packet_id = p.packet_id;
  std::vector<broker::route_change> changes;
  for (auto& f : p.filters) {
    auto it = session_->subscriptions.find(f);
    if (it == session_->subscriptions.end()) {
      ack.reasons.push_back(reason_code::no_subscription_existed);
      continue;
    }
    changes.push_back({f, it->second, false});
    session_->subscriptions.erase(it);
    broker_.stats().subscriptions.sub();
    ack.reasons.push_back(reason_code::success);
  }
  auto self = shared_from_this();
  std::vector<std::string> removed;
  for (const auto& c : changes) removed.push_back(c.filter);
  broker_.update_routes(worker_, session_, std::move(changes), [self, ack = std::move(ack), removed = std::move(removed)] {
    if (self->state_ != state::connected) return;
    self->send(ack);
    if (!removed.empty())
      for (auto* h : self->broker_.hooks()) h->on_unsubscribed(self->hook_view(), removed);
  });
}

}  // namespace fleetcore::broker
