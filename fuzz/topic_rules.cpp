// The topic rules every publish passes (mqtt::check_topic_name, used for MQTT, wills, HTTP and server
// messages through broker::check_publish_topic): whatever the bytes, an accepted topic is one that
// every MQTT client can take — valid UTF-8 without NUL or control characters, no wildcards, within
// the limits — and a wildcard subscription matches it exactly when it does not start with '$'.
#include "mqtt/topic.hpp"
#include "mqtt/utf8.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace fleetcore::mqtt;
  std::string_view topic(reinterpret_cast<const char*>(data), size);
  constexpr std::size_t max_bytes = 64, max_levels = 4;
  auto verdict = check_topic_name(topic, max_bytes, max_levels);
  if (verdict != topic_name_error::none) return 0;
  bool ok = !topic.empty() && topic.size() <= max_bytes && topic_levels(topic) <= max_levels &&
            valid_mqtt_utf8(topic) && valid_topic_name(topic) && valid_topic_filter(topic);
  for (unsigned char c : topic) ok = ok && c >= 0x20 && c != 0x7F;
  ok = ok && topic_matches(topic, topic) && topic_matches("#", topic) == (topic[0] != '$');
  if (!ok) std::abort();
  return 0;
}
