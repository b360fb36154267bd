#pragma once
// The cross-node routing seam. A broker in a cluster knows the other nodes only through this interface
// (served over NATS by src/cluster): it reports its own subscription interest, and hands over the
// messages that other nodes' subscribers must get. What other nodes report comes back through
// broker::peer_interest / peer_reset / peer_gone, and their messages through broker::publish_from_peer.
#include "broker/message.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace fleetcore::broker {

class cluster_link {
 public:
  virtual ~cluster_link() = default;

  /// This node's interest in `filter` (as subscribed, `$share/<group>/` included) began (`add`: its
  /// first local subscriber) or ended. Calls are ordered (the broker makes them under one lock,
  /// which also covers with_local_interest). `done` (may be empty) runs on any thread once every
  /// live peer has applied the change, or after the link's timeout: a SUBACK waits for it, so a
  /// message published anywhere after the SUBACK reaches the new subscriber.
  virtual void interest(const std::string& filter, bool add, std::function<void()> done) = 0;

  /// A client connects here as `client_id`: every live peer gives it up (broker::release) before
  /// `done` runs (any thread; after the link's timeout for a peer that does not answer), so a client
  /// id is connected on one node at a time and its persistent session is in the store to take over.
  /// `held_elsewhere`: a peer had a session for it (a copy here is then stale: this node lost it).
  virtual void claim(const std::string& client_id, bool clean_start, std::function<void(bool held_elsewhere)> done) = 0;

  /// Hands `m` to peer `node`, whose subscribers (and, for the shared groups in `groups`, one of its
  /// members) get it. With `done`, the peer acknowledges once its copies are stored (QoS 1/2):
  /// `done(ok, recipients)` runs on any thread, with ok = false if the peer refused or did not
  /// answer within the link's timeout. Without `done`, nothing is awaited.
  using forward_done = std::function<void(bool ok, std::size_t recipients)>;
  virtual void forward(const std::string& node, const message_ptr& m, std::vector<std::string> groups,
                       forward_done done) = 0;
};

}  // namespace fleetcore::broker
