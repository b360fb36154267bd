#pragma once
#include <string_view>

namespace fleetcore::mqtt {

/// True if `s` is well-formed UTF-8 as MQTT requires (RFC 3629, no surrogates, no overlong forms)
/// and contains no U+0000 [MQTT-1.5.4-1, -2].
bool valid_mqtt_utf8(std::string_view s) noexcept;

/// Well-formed UTF-8, U+0000 allowed: the check for a payload with payload format indicator 1.
bool valid_utf8(std::string_view s) noexcept;

}  // namespace fleetcore::mqtt
