#pragma once
// What nodes of a cluster say to each other over NATS, as bytes: pure encoding and decoding, no I/O.
// Every frame starts with its kind; integers are big-endian, strings length-prefixed. A frame that
// does not decode whole is dropped (decode returns nothing).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcore::cluster::wire {

/// A node is alive: sent every heartbeat. `epoch` is new each time the node starts.
struct hello {
  std::string node;
  std::uint64_t epoch = 0;
};

/// A node is leaving (it stops): its peers forget it at once instead of after their peer timeout.
struct bye {
  std::string node;
  std::uint64_t epoch = 0;
};

/// The sender (the lowest node id alive) has taken over the persistent sessions of gone node `of`,
/// and its interest includes theirs: the receiver stops refusing messages for them.
struct inherited {
  std::string node;
  std::uint64_t epoch = 0;
  std::string of;
};

/// A node's interest: a full list (`reset`: everything it had is replaced) or changes. The receiver
/// acknowledges `request` (when not 0) once its tries have it.
struct interest {
  std::string node;
  std::uint64_t epoch = 0;
  std::uint64_t request = 0;
  bool reset = false;
  /// With a full list: the receiver answers with its own (the sender may have lost it).
  bool want_reply = false;
  std::vector<std::pair<std::string, bool>> changes;  // filter, added
};

/// A client connects to the sender as `client_id`: the receiver gives it up (closes its connection,
/// hands over or ends its session) and acknowledges `request`.
struct claim {
  std::string node;
  std::uint64_t epoch = 0;
  std::uint64_t request = 0;
  std::string client_id;
  bool clean_start = false;
};

/// Control-plane documents the sender committed to the shared store (a registry transaction): the
/// receiver applies them to its in-memory state.
struct documents {
  std::string node;
  std::uint64_t epoch = 0;
  struct entry {
    bool deleted = false;
    std::string kind;
    std::string key;
    std::string body;  // empty when deleted
    bool operator==(const entry&) const = default;
  };
  std::vector<entry> entries;
};

/// A message forwarded to one node. The receiver acknowledges `request` (when not 0) once its copies
/// are stored.
struct message {
  std::string node;  // the sender
  std::uint64_t request = 0;
  std::uint64_t order_key = 0;
  std::uint8_t qos = 0;
  bool retain = false;
  std::uint8_t rule_hops = 0;
  std::int64_t expiry_at_ms = 0;
  std::string topic;
  std::string props;
  std::vector<std::string> groups;
  std::string payload;
};

/// The answer to a request, from `node` (a request id is only this node's, so an answer is checked
/// against the node it was asked of).
struct ack {
  std::string node;
  std::uint64_t request = 0;
  bool ok = false;
  std::uint32_t recipients = 0;
};

enum class kind : char { hello = 'H', bye = 'B', interest = 'I', claim = 'C', documents = 'D', message = 'M', ack = 'A',
                        inherited = 'T' };

std::string encode(const hello& h);
std::string encode(const bye& b);
std::string encode(const inherited& t);
std::string encode(const interest& i);
std::string encode(const claim& c);
std::string encode(const documents& d);
std::string encode(const message& m);
std::string encode(const ack& a);

/// The kind of a frame, if it has one.
std::optional<kind> kind_of(std::string_view frame);
std::optional<hello> decode_hello(std::string_view frame);
std::optional<bye> decode_bye(std::string_view frame);
std::optional<inherited> decode_inherited(std::string_view frame);
std::optional<interest> decode_interest(std::string_view frame);
std::optional<claim> decode_claim(std::string_view frame);
std::optional<documents> decode_documents(std::string_view frame);
std::optional<message> decode_message(std::string_view frame);
std::optional<ack> decode_ack(std::string_view frame);

}  // namespace fleetcore::cluster::wire
