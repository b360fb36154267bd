// Shadow document semantics against the examples of the AWS IoT Developer Guide
// (device-shadow-document.md, device-shadow-data-flow.md), checked field by field.
#include "shadow/document.hpp"

#include <gtest/gtest.h>

namespace fleetcore::shadow {
namespace {

namespace json = boost::json;

json::value j(std::string_view s) { return json::parse(s); }

/// Applies `payload` to `s` at time `now`; fails the test if it is refused.
update_result update(shadow_state& s, std::string_view payload, std::int64_t now = 1000) {
  request req;
  limits lim;
  auto e = parse_update(payload, lim, req);
  EXPECT_FALSE(e) << (e ? e->message : "");
  update_result out;
  if (!e) e = apply_update(s, req, now, lim, out);
  EXPECT_FALSE(e) << (e ? e->message : "");
  return out;
}

/// The refusal of `payload` applied to `s`.
error refusal(shadow_state& s, std::string_view payload, limits lim = {}) {
  request req;
  auto e = parse_update(payload, lim, req);
  update_result out;
  if (!e) e = apply_update(s, req, 1000, lim, out);
  EXPECT_TRUE(e) << payload;
  return e.value_or(error{});
}

TEST(shadow_document, first_update_accepted_delta_and_documents) {
  shadow_state s;
  auto r = update(s, R"({"state":{"desired":{"color":{"r":10},"engine":"ON"}},"clientToken":"tok-1"})", 1591057529);
  EXPECT_EQ(json::value(r.accepted), j(R"({
    "state":{"desired":{"color":{"r":10},"engine":"ON"}},
    "metadata":{"desired":{"color":{"r":{"timestamp":1591057529}},"engine":{"timestamp":1591057529}}},
    "version":1,"timestamp":1591057529,"clientToken":"tok-1"})"));
  ASSERT_TRUE(r.delta);
  EXPECT_EQ(json::value(*r.delta), j(R"({
    "version":1,"timestamp":1591057529,"state":{"color":{"r":10},"engine":"ON"},
    "metadata":{"color":{"r":{"timestamp":1591057529}},"engine":{"timestamp":1591057529}},"clientToken":"tok-1"})"));
  // No previous document on creation.
  EXPECT_EQ(json::value(r.documents), j(R"({
    "current":{"state":{"desired":{"color":{"r":10},"engine":"ON"}},
               "metadata":{"desired":{"color":{"r":{"timestamp":1591057529}},"engine":{"timestamp":1591057529}}},
               "version":1},
    "timestamp":1591057529,"clientToken":"tok-1"})"));
}

TEST(shadow_document, delta_example_of_the_guide) {
  shadow_state s;
  update(s, R"({"state":{"desired":{"color":"RED","state":"STOP"},"reported":{"color":"GREEN","engine":"ON"}}})", 12345);
  json::object doc;
  ASSERT_FALSE(get_document(s, {}, 123456789, doc, "thing"));
  EXPECT_EQ(json::value(doc["state"]), j(R"({"desired":{"color":"RED","state":"STOP"},
      "reported":{"color":"GREEN","engine":"ON"},"delta":{"color":"RED","state":"STOP"}})"));
  EXPECT_EQ(doc["version"].as_int64(), 1);
  EXPECT_EQ(doc["timestamp"].as_int64(), 123456789);
}

TEST(shadow_document, nested_delta_keeps_the_path_to_the_root) {
  shadow_state s;
  update(s, R"({"state":{"desired":{"lights":{"color":{"r":255,"g":255,"b":255}}},
                         "reported":{"lights":{"color":{"r":255,"g":0,"b":255}}}}})");
  EXPECT_EQ(json::value(compute_delta(s.state["desired"].as_object(), s.state["reported"].as_object())),
            j(R"({"lights":{"color":{"g":255}}})"));
}

TEST(shadow_document, delta_rules) {
  // Desired only: included; reported only: not; arrays compared whole.
  EXPECT_EQ(json::value(compute_delta(j(R"({"a":1,"b":[1,2],"c":{"x":1}})").as_object(),
                                      j(R"({"b":[1,2],"z":3,"c":5})").as_object())),
            j(R"({"a":1,"c":{"x":1}})"));
  EXPECT_EQ(json::value(compute_delta(j(R"({"b":[1,2]})").as_object(), j(R"({"b":[2,1]})").as_object())),
            j(R"({"b":[1,2]})"));
}

TEST(shadow_document, optimistic_locking_example) {
  shadow_state s;
  s.version = 9;
  s.exists = true;
  update(s, R"({"state":{"desired":{"colors":["RED","GREEN","BLUE"]}}})");
  ASSERT_EQ(s.version, 10);
  request req;
  ASSERT_FALSE(parse_update(R"({"state":{"desired":{"colors":["BLUE"]}},"version":9,
                                "clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"})", {}, req));
  update_result out;
  auto e = apply_update(s, req, 2000, {}, out);
  ASSERT_TRUE(e);
  EXPECT_EQ(json::value(error_document(*e, 2000, req.client_token)),
            j(R"({"code":409,"message":"Version conflict","timestamp":2000,
                  "clientToken":"426bfd96-e720-46d3-95cd-014e3ef12bb6"})"));
  EXPECT_EQ(s.version, 10);  // unchanged
  update(s, R"({"state":{"desired":{"colors":["BLUE"]}},"version":10})");
  EXPECT_EQ(s.version, 11);
  EXPECT_EQ(json::value(s.state), j(R"({"desired":{"colors":["BLUE"]}})"));  // arrays replaced whole
}

TEST(shadow_document, array_metadata_has_one_entry_per_element) {
  // As AWS IoT returns it: an array's metadata is an array of per-element metadata, objects inside
  // arrays get per-field metadata, and replacing the array replaces its metadata whole.
  shadow_state s;
  auto r = update(s, R"({"state":{"desired":{"colors":["RED","GREEN"],"zones":[{"id":1,"on":true},[2,3]],"none":[]}}})");
  auto expected = j(R"({"desired":{"colors":[{"timestamp":1000},{"timestamp":1000}],
      "zones":[{"id":{"timestamp":1000},"on":{"timestamp":1000}},[{"timestamp":1000},{"timestamp":1000}]],
      "none":[]}})");
  EXPECT_EQ(json::value(r.accepted["metadata"]), expected);
  EXPECT_EQ(json::value(s.metadata), expected);
  EXPECT_EQ(json::value(r.delta->at("metadata")), expected.at("desired"));

  update(s, R"({"state":{"desired":{"colors":["BLUE"]}}})", 2000);
  EXPECT_EQ(json::value(s.metadata["desired"].at("colors")), j(R"([{"timestamp":2000}])"));
  EXPECT_EQ(json::value(s.metadata["desired"].at("zones")).as_array().size(), 2u);  // untouched
  // An object replaced by an array and back: the metadata follows the value's shape.
  update(s, R"({"state":{"desired":{"colors":{"main":"RED"}}}})", 3000);
  EXPECT_EQ(json::value(s.metadata["desired"].at("colors")), j(R"({"main":{"timestamp":3000}})"));
  update(s, R"({"state":{"desired":{"colors":["RED"]}}})", 4000);
  EXPECT_EQ(json::value(s.metadata["desired"].at("colors")), j(R"([{"timestamp":4000}])"));
}

TEST(shadow_document, null_removes_properties_and_sections) {
  shadow_state s;
  update(s, R"({"state":{"desired":{"color":"RED","engine":"ON"},"reported":{"color":"red"}}})");
  auto r = update(s, R"({"state":{"desired":{"engine":null}}})");
  EXPECT_EQ(json::value(s.state), j(R"({"desired":{"color":"RED"},"reported":{"color":"red"}})"));
  EXPECT_EQ(json::value(s.metadata["desired"]), j(R"({"color":{"timestamp":1000}})"));
  EXPECT_EQ(json::value(r.accepted["state"]), j(R"({"desired":{"engine":null}})"));
  update(s, R"({"state":{"reported":{"color":"red"},"desired":null}})");
  EXPECT_EQ(json::value(s.state), j(R"({"reported":{"color":"red"}})"));
  EXPECT_FALSE(s.metadata.contains("desired"));
  // A nested object emptied by deletions disappears.
  update(s, R"({"state":{"reported":{"lights":{"on":true}}}})");
  update(s, R"({"state":{"reported":{"lights":{"on":null}}}})");
  EXPECT_EQ(json::value(s.state), j(R"({"reported":{"color":"red"}})"));
  // state: null empties the document but keeps the shadow, and the version moves on.
  auto v = s.version;
  update(s, R"({"state":null})");
  EXPECT_TRUE(s.exists);
  EXPECT_TRUE(s.state.empty());
  EXPECT_EQ(s.version, v + 1);
}

TEST(shadow_document, update_without_desired_publishes_no_delta) {
  shadow_state s;
  update(s, R"({"state":{"desired":{"a":1}}})");
  auto r = update(s, R"({"state":{"reported":{"a":2}}})");
  EXPECT_FALSE(r.delta);
  r = update(s, R"({"state":{"desired":{"a":2}}})");
  EXPECT_FALSE(r.delta) << "desired now equals reported";
  r = update(s, R"({"state":{"desired":{"b":1}}})");
  ASSERT_TRUE(r.delta);
  EXPECT_EQ(json::value((*r.delta)["state"]), j(R"({"b":1})"));
}

TEST(shadow_document, documents_carry_previous_and_current) {
  shadow_state s;
  update(s, R"({"state":{"reported":{"t":1}}})", 10);
  auto r = update(s, R"({"state":{"reported":{"t":2}},"clientToken":"c"})", 20);
  EXPECT_EQ(json::value(r.documents), j(R"({
    "previous":{"state":{"reported":{"t":1}},"metadata":{"reported":{"t":{"timestamp":10}}},"version":1},
    "current":{"state":{"reported":{"t":2}},"metadata":{"reported":{"t":{"timestamp":20}}},"version":2},
    "timestamp":20,"clientToken":"c"})"));
}

TEST(shadow_document, get_and_delete_of_a_missing_shadow) {
  shadow_state s;
  json::object out;
  auto e = get_document(s, {}, 5, out, "myThing");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 404);
  EXPECT_EQ(e->message, "No shadow exists with name: 'myThing'");
  e = delete_shadow(s, {}, 5, out, "myThing");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, 404);
}

TEST(shadow_document, delete_then_recreate_continues_the_version) {
  shadow_state s;
  update(s, R"({"state":{"reported":{"a":1}}})");
  update(s, R"({"state":{"reported":{"a":2}}})");
  update(s, R"({"state":{"reported":{"a":3}}})");
  update(s, R"({"state":{"reported":{"a":4}}})");
  json::object out;
  request req;
  ASSERT_FALSE(parse_simple(R"({"clientToken":"d1"})", req));
  ASSERT_FALSE(delete_shadow(s, req, 1591057529, out, "t"));
  EXPECT_EQ(json::value(out), j(R"({"version":4,"timestamp":1591057529,"clientToken":"d1"})"));
  EXPECT_TRUE(get_document(s, {}, 1591057530, out, "t"));
  update(s, R"({"state":{"reported":{"b":1}}})", 1591057600);
  EXPECT_EQ(s.version, 5);
  EXPECT_EQ(json::value(s.state), j(R"({"reported":{"b":1}})"));
  // Deleted for more than 48 hours: the version starts over.
  ASSERT_FALSE(delete_shadow(s, {}, 1591057700, out, "t"));
  update(s, R"({"state":{"reported":{"c":1}}})", 1591057700 + tombstone_keep_s + 1);
  EXPECT_EQ(s.version, 1);
}

TEST(shadow_document, request_errors_as_aws_words_them) {
  shadow_state s;
  struct kase {
    const char* payload;
    int code;
    const char* message;
  } cases[] = {
      {"not json", 400, "Invalid JSON"},
      {"[1,2]", 400, "Invalid JSON"},
      {R"({"clientToken":"x"})", 400, "Missing required node: state"},
      {R"({"state":5})", 400, "State node must be an object"},
      {R"({"state":{"desired":5}})", 400, "Desired node must be an object"},
      {R"({"state":{"reported":"x"}})", 400, "Reported node must be an object"},
      {R"({"state":{"delta":{"a":1}}})", 400, "State contains an invalid node"},
      {R"({"state":{"desired":{"a":1}},"version":"3"})", 400, "Invalid version"},
      {R"({"state":{"desired":{"a":1}},"version":-1})", 400, "Invalid version"},
      {R"({"state":{"desired":{"a":1}},"clientToken":5})", 400, "Invalid clientToken"},
      {R"({"state":{"desired":{"colors":[null,"RED"]}}})", 400, "Invalid JSON"},
      {R"({"state":{"reported":{"big":1e999}}})", 400, "Invalid JSON"},  // beyond a double (fuzzer)
      {R"({"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":{"g":1}}}}}}}}})", 400,
       "JSON contains too many levels of nesting; maximum is 6"},
  };
  for (const auto& c : cases) {
    auto e = refusal(s, c.payload);
    EXPECT_EQ(e.code, c.code) << c.payload;
    EXPECT_EQ(e.message, c.message) << c.payload;
  }
  std::string long_token = R"({"state":{"desired":{"a":1}},"clientToken":")" + std::string(65, 'x') + "\"}";
  EXPECT_EQ(refusal(s, long_token).message, "Invalid clientToken");
  EXPECT_FALSE(s.exists) << "no refused request created the shadow";
  // Six levels are fine.
  update(s, R"({"state":{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}})");
}

TEST(shadow_document, size_and_encoding_limits) {
  shadow_state s;
  std::string big = R"({"state":{"desired":{"a":")" + std::string(8200, 'x') + "\"}}}";
  auto e = refusal(s, big);
  EXPECT_EQ(e.code, 413);
  EXPECT_EQ(e.message, "The payload exceeds the maximum size allowed");
  EXPECT_EQ(refusal(s, "{\"state\":{\"desired\":{\"a\":\"\xff\xfe\"}}}").code, 415);
  // Each update is small, but the merged state would exceed the limit: refused, state unchanged.
  for (int i = 0; i < 4; ++i)
    update(s, R"({"state":{"desired":{"k)" + std::to_string(i) + R"(":")" + std::string(1900, 'y') + "\"}}}");
  auto before = s.state;
  EXPECT_EQ(refusal(s, R"({"state":{"desired":{"k9":")" + std::string(1900, 'y') + "\"}}}").code, 413);
  EXPECT_EQ(s.state, before);
}

TEST(shadow_document, stored_form_round_trips) {
  shadow_state s;
  update(s, R"({"state":{"desired":{"a":[1,2]},"reported":{"b":{"c":true}}}})");
  auto back = shadow_state::parse(s.serialize());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->state, s.state);
  EXPECT_EQ(back->metadata, s.metadata);
  EXPECT_EQ(back->version, s.version);
  EXPECT_TRUE(back->exists);
  EXPECT_FALSE(shadow_state::parse("{"));
}

}  // namespace
}  // namespace fleetcore::shadow

namespace fleetcore::shadow {
namespace {

TEST(shadow_document, numbers_read_back_the_same_after_a_restart) {
  // Boost.JSON 1.81 does not round every 17-digit number to the nearest double; found by the fuzzer.
  shadow_state s;
  update(s, R"({"state":{"reported":{"a":207777770000000000000000000000001392885295,"b":0.30000000000000004,
                                      "c":207777777777777777777777777777777777777777,"d":21.5}}})");
  shadow_state now = s;
  for (int restart = 0; restart < 5; ++restart) {
    auto back = shadow_state::parse(now.serialize());
    ASSERT_TRUE(back);
    EXPECT_EQ(back->state, s.state) << "after restart " << restart;
    now = *back;
  }
  EXPECT_EQ(s.state["reported"].as_object()["d"].as_double(), 21.5);
}

}  // namespace
}  // namespace fleetcore::shadow
