#pragma once
// CBOR ⇄ JSON for the fleet provisioning API, whose CBOR topics carry the same documents as its JSON
// ones (the Guide's fleet-provision-api.md): maps with text keys, text, integers, booleans, null,
// floats, arrays, nested up to 16 levels. Decoding runs libcbor's streaming decoder (no allocation per
// item beyond the value built, no recursion); byte strings, tags' numbers and indefinite-length text
// are refused. Pure functions: unit-tested and fuzzed with the template target's neighbours.
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::provisioning {

/// The JSON value a CBOR payload holds (one item, nothing after it), or nullopt.
std::optional<boost::json::value> cbor_to_json(std::string_view cbor);

/// CBOR of a JSON value (definite lengths, smallest integer encodings).
std::string json_to_cbor(const boost::json::value& v);

}  // namespace fleetcore::provisioning
