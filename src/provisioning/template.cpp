#include "provisioning/template.hpp"

#include <boost/json/error.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace fleetcore::provisioning {

namespace json = boost::json;

namespace {

constexpr std::size_t k_max_body = 10240;
constexpr int k_max_depth = 32;

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

/// A value that must be a string once resolved: numbers and booleans become their text.
std::optional<std::string> as_text(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) return json::serialize(v);
  if (v.is_bool()) return v.get_bool() ? "true" : "false";
  return std::nullopt;
}

/// The intrinsic function an object is, if it is one: an object with one member named Ref or Fn::*.
std::optional<std::string_view> intrinsic(const json::object& o) {
  if (o.size() != 1) return std::nullopt;
  std::string_view k = o.begin()->key();
  if (k == "Ref" || k.starts_with("Fn::") || k == "Condition") return k;
  return std::nullopt;
}

class evaluator {
 public:
  evaluator(const parsed_template& t, const std::map<std::string, std::string>& parameters) : t_(t), params_(parameters) {}

  /// `v` with every intrinsic function replaced by its value; nullopt with error_ set.
  std::optional<json::value> resolve(const json::value& v, int depth = 0) {
    if (depth > k_max_depth) return fail("the template nests deeper than 32 levels");
    if (v.is_array()) {
      json::array out;
      for (const auto& e : v.get_array()) {
        auto r = resolve(e, depth + 1);
        if (!r) return std::nullopt;
        out.push_back(std::move(*r));
      }
      return json::value(std::move(out));
    }
    if (!v.is_object()) return v;
    const auto& o = v.get_object();
    auto fn = intrinsic(o);
    if (!fn) {
      json::object out;
      for (const auto& [k, e] : o) {
        auto r = resolve(e, depth + 1);
        if (!r) return std::nullopt;
        out[k] = std::move(*r);
      }
      return json::value(std::move(out));
    }
    const json::value& arg = o.begin()->value();
    if (*fn == "Ref") {
      if (!arg.is_string()) return fail("Ref takes a parameter name");
      auto value = parameter(arg.get_string());
      if (!value) return std::nullopt;
      return json::value(*value);
    }
    if (*fn == "Fn::Join") {
      const auto* a = arg.if_array();
      if (!a || a->size() != 2 || !(*a)[0].is_string()) return fail("Fn::Join takes [delimiter, [values]]");
      auto list = resolve((*a)[1], depth + 1);
      if (!list || !list->is_array()) return list ? fail("Fn::Join takes [delimiter, [values]]") : std::nullopt;
      std::string out;
      bool first = true;
      for (const auto& e : list->get_array()) {
        auto s = as_text(e);
        if (!s) return fail("Fn::Join joins strings");
        if (!first) out += (*a)[0].get_string();
        out += *s;
        first = false;
      }
      return json::value(out);
    }
    if (*fn == "Fn::Select") {
      const auto* a = arg.if_array();
      if (!a || a->size() != 2) return fail("Fn::Select takes [index, [values]]");
      auto index = resolve((*a)[0], depth + 1);
      auto list = resolve((*a)[1], depth + 1);
      if (!index || !list) return std::nullopt;
      auto text = as_text(*index);
      std::size_t i = 0;
      if (!text || std::from_chars(text->data(), text->data() + text->size(), i).ec != std::errc())
        return fail("Fn::Select's index must be a number");
      if (!list->is_array() || i >= list->get_array().size() || list->get_array()[i].is_null())
        return fail("Fn::Select's index " + *text + " is out of the list's bounds or selects null");
      return list->get_array()[i];
    }
    if (*fn == "Fn::Split") {
      const auto* a = arg.if_array();
      if (!a || a->size() != 2 || !(*a)[0].is_string() || (*a)[0].get_string().empty())
        return fail("Fn::Split takes [delimiter, string]");
      auto source = resolve((*a)[1], depth + 1);
      if (!source) return std::nullopt;
      auto s = as_text(*source);
      if (!s) return fail("Fn::Split splits a string");
      const std::string delimiter((*a)[0].get_string());
      json::array out;
      std::size_t from = 0;
      for (auto at = s->find(delimiter); at != std::string::npos; at = s->find(delimiter, from)) {
        out.emplace_back(s->substr(from, at - from));
        from = at + delimiter.size();
      }
      out.emplace_back(s->substr(from));
      return json::value(std::move(out));
    }
    if (*fn == "Fn::FindInMap") {
      const auto* a = arg.if_array();
      if (!a || a->size() != 3) return fail("Fn::FindInMap takes [map, key, key]");
      std::string keys[3];
      for (int k = 0; k < 3; ++k) {
        auto r = resolve((*a)[std::size_t(k)], depth + 1);
        if (!r) return std::nullopt;
        auto s = as_text(*r);
        if (!s) return fail("Fn::FindInMap's names must be strings");
        keys[k] = std::move(*s);
      }
      const auto* map = t_.mappings.if_contains(keys[0]);
      const auto* first = map && map->is_object() ? map->get_object().if_contains(keys[1]) : nullptr;
      const auto* value = first && first->is_object() ? first->get_object().if_contains(keys[2]) : nullptr;
      if (!value) return fail("Fn::FindInMap: Mappings has no " + keys[0] + "." + keys[1] + "." + keys[2]);
      return *value;
    }
    if (*fn == "Fn::Sub") {
      std::string text;
      std::map<std::string, std::string> vars;
      if (arg.is_string()) {
        text = arg.get_string();
      } else if (const auto* a = arg.if_array(); a && a->size() == 2 && (*a)[0].is_string() && (*a)[1].is_object()) {
        text = (*a)[0].get_string();
        for (const auto& [k, e] : (*a)[1].get_object()) {
          auto r = resolve(e, depth + 1);
          if (!r) return std::nullopt;
          auto s = as_text(*r);
          if (!s) return fail("Fn::Sub's variables must be strings");
          vars[std::string(k)] = std::move(*s);
        }
      } else {
        return fail("Fn::Sub takes a string, or [string, {variables}]");
      }
      std::string out;
      for (std::size_t i = 0; i < text.size();) {
        if (text.compare(i, 3, "${!") == 0) {  // ${!Literal} is the text ${Literal}
          out += "${";
          i += 3;
          continue;
        }
        if (text.compare(i, 2, "${") != 0) {
          out += text[i++];
          continue;
        }
        auto end = text.find('}', i);
        if (end == std::string::npos) return fail("Fn::Sub: ${ without }");
        const std::string name = text.substr(i + 2, end - i - 2);
        if (auto v = vars.find(name); v != vars.end()) {
          out += v->second;
        } else {
          auto p = parameter(name);
          if (!p) return std::nullopt;
          out += *p;
        }
        i = end + 1;
      }
      return json::value(out);
    }
    return fail(std::string(*fn) + " is not a function provisioning templates have (Ref, Fn::Join, Fn::Select, "
                                   "Fn::FindInMap, Fn::Split, Fn::Sub)");
  }

  std::optional<std::string> parameter(std::string_view name) {
    if (auto it = params_.find(std::string(name)); it != params_.end()) return it->second;
    if (const auto* decl = t_.parameters.if_contains(name))
      if (const auto* d = decl->get_object().if_contains("Default"))
        if (auto s = as_text(*d)) return s;
    fail("parameter " + std::string(name) + " has no value" +
         (t_.parameters.contains(name) ? std::string() : " (the template does not declare it)"));
    return std::nullopt;
  }

  std::nullopt_t fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return std::nullopt;
  }

  std::string error;

 private:
  const parsed_template& t_;
  const std::map<std::string, std::string>& params_;
};

std::optional<on_existing> rule_of(const json::object& overrides, std::initializer_list<std::string_view> keys,
                                   bool merge_allowed, std::string& error) {
  for (auto key : keys) {
    const auto* v = overrides.if_contains(key);
    if (!v) continue;
    const std::string rule = v->is_string() ? upper(v->get_string()) : std::string();
    if (rule == "DO_NOTHING") return on_existing::do_nothing;
    if (rule == "REPLACE") return on_existing::replace;
    if (rule == "FAIL") return on_existing::fail;
    if (rule == "MERGE" && merge_allowed) return on_existing::merge;
    error = "OverrideSettings." + std::string(key) + " must be DO_NOTHING, REPLACE, FAIL" + (merge_allowed ? " or MERGE" : "");
    return std::nullopt;
  }
  return on_existing::replace;
}

/// A policy's default name: the hash of its document, as AWS names them (40 uppercase hex digits).
std::string document_hash(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha1(), nullptr);
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += digits[d[i] >> 4];
    out += digits[d[i] & 15];
  }
  return out;
}

}  // namespace

std::optional<parsed_template> parse_template(std::string_view body, std::string& error) {
  if (body.size() > k_max_body) {
    error = "templateBody is longer than 10240 characters";
    return std::nullopt;
  }
  boost::system::error_code ec;
  auto v = json::parse(body, ec);  // Boost.JSON's parser stops at 32 levels of nesting
  if (ec == json::error::too_deep) {
    error = "templateBody nests deeper than 32 levels";
    return std::nullopt;
  }
  if (ec || !v.is_object()) {
    error = "templateBody is not a JSON object";
    return std::nullopt;
  }
  parsed_template t;
  for (const auto& member : v.get_object()) {
    // Named, not structured bindings: lambdas capture them (clang 14 cannot capture a binding).
    const std::string_view section = member.key();
    const json::value& value = member.value();
    auto object = [&](json::object& into) {
      if (!value.is_object()) {
        error = std::string(section) + " must be an object";
        return false;
      }
      into = value.get_object();
      return true;
    };
    if (section == "Parameters") {
      if (!object(t.parameters)) return std::nullopt;
    } else if (section == "Mappings") {
      if (!object(t.mappings)) return std::nullopt;
    } else if (section == "Resources") {
      if (!object(t.resources)) return std::nullopt;
    } else if (section == "DeviceConfiguration") {
      if (!object(t.device_configuration)) return std::nullopt;
    } else {
      error = "templateBody has a section provisioning templates do not have: " + std::string(section) +
              " (Parameters, Mappings, Resources, DeviceConfiguration)";
      return std::nullopt;
    }
  }
  for (const auto& [name, decl] : t.parameters) {
    const auto* d = decl.if_object();
    const auto* type = d ? d->if_contains("Type") : nullptr;
    if (!type || !type->is_string() || type->get_string() != "String") {
      error = "parameter " + std::string(name) + " must be declared {\"Type\": \"String\"}";
      return std::nullopt;
    }
  }
  for (const auto& [map, entries] : t.mappings) {
    if (!entries.is_object()) {
      error = "Mappings." + std::string(map) + " must be an object of objects";
      return std::nullopt;
    }
    for (const auto& [key, values] : entries.get_object())
      if (!values.is_object()) {
        error = "Mappings." + std::string(map) + "." + std::string(key) + " must be an object";
        return std::nullopt;
      }
  }
  int things = 0, certificates = 0, policies = 0;
  for (const auto& [logical, resource] : t.resources) {
    const auto* r = resource.if_object();
    const auto* type = r ? r->if_contains("Type") : nullptr;
    const std::string_view kind = type && type->is_string() ? std::string_view(type->get_string()) : std::string_view();
    if (kind == "AWS::IoT::Thing") ++things;
    else if (kind == "AWS::IoT::Certificate") ++certificates;
    else if (kind == "AWS::IoT::Policy") ++policies;
    else {
      error = "resource " + std::string(logical) +
              ": Type must be AWS::IoT::Thing, AWS::IoT::Certificate or AWS::IoT::Policy";
      return std::nullopt;
    }
    if (const auto* p = r->if_contains("Properties"); p && (!p->is_object() || intrinsic(p->get_object()))) {
      error = "resource " + std::string(logical) + ": Properties must be an object";
      return std::nullopt;
    }
    if (const auto* o = r->if_contains("OverrideSettings"); o && (!o->is_object() || kind == "AWS::IoT::Policy")) {
      error = "resource " + std::string(logical) + ": OverrideSettings " +
              (kind == "AWS::IoT::Policy" ? "are not available for policies" : "must be an object");
      return std::nullopt;
    }
    for (const auto& [member, _] : *r)
      if (member != "Type" && member != "Properties" && member != "OverrideSettings") {
        error = "resource " + std::string(logical) + ": " + std::string(member) + " is not supported";
        return std::nullopt;
      }
  }
  if (things > 1 || certificates > 1 || policies > 10) {
    error = "a template declares at most one thing, one certificate and ten policies";
    return std::nullopt;
  }
  return t;
}

std::vector<std::string> declared_parameters(const parsed_template& t) {
  std::vector<std::string> out;
  for (const auto& [name, _] : t.parameters) out.emplace_back(name);
  return out;
}

std::optional<plan> evaluate(const parsed_template& t, const std::map<std::string, std::string>& parameters,
                             std::string& error) {
  evaluator ev(t, parameters);
  plan out;
  auto failed = [&](std::string message) {
    error = ev.error.empty() ? std::move(message) : ev.error;
    return std::nullopt;
  };
  for (const auto& [logical, resource] : t.resources) {
    const auto& r = resource.get_object();
    const std::string_view kind = r.at("Type").get_string();
    json::value props = json::object();
    if (const auto* p = r.if_contains("Properties")) {
      auto resolved = ev.resolve(*p);
      if (!resolved) return failed("");
      if (!resolved->is_object()) return failed("resource " + std::string(logical) + ": Properties must be an object");
      props = std::move(*resolved);
    }
    const auto& pr = props.get_object();
    auto text = [&](std::string_view key) -> std::optional<std::string> {
      const auto* v = pr.if_contains(key);
      return v ? as_text(*v) : std::nullopt;
    };
    const json::object no_overrides;
    const auto* ov = r.if_contains("OverrideSettings");
    const auto& overrides = ov ? ov->get_object() : no_overrides;
    const std::string where = "resource " + std::string(logical) + ": ";

    if (kind == "AWS::IoT::Thing") {
      thing_resource th;
      th.logical = logical;
      auto name = text("ThingName");
      if (!name || name->empty()) return failed(where + "ThingName is required");
      th.name = *name;
      if (const auto* a = pr.if_contains("AttributePayload")) {
        if (!a->is_object()) return failed(where + "AttributePayload must be an object of strings");
        std::map<std::string, std::string> attrs;
        for (const auto& [k, v] : a->get_object()) {
          auto s = as_text(v);
          if (!s) return failed(where + "AttributePayload's values must be strings");
          attrs[std::string(k)] = *s;
        }
        th.attributes = std::move(attrs);
      }
      th.type = text("ThingTypeName");
      if (const auto* g = pr.if_contains("ThingGroups")) {
        if (!g->is_array()) return failed(where + "ThingGroups must be a list of group names");
        std::vector<std::string> groups;
        for (const auto& e : g->get_array()) {
          auto s = as_text(e);
          if (!s) return failed(where + "ThingGroups must be a list of group names");
          groups.push_back(*s);
        }
        th.groups = std::move(groups);
      }
      th.billing_group = text("BillingGroup");
      std::string rule_error;
      auto a = rule_of(overrides, {"ATTRIBUTE_PAYLOAD", "AttributePayload"}, true, rule_error);
      auto ty = rule_of(overrides, {"THING_TYPE_NAME", "ThingTypeName"}, false, rule_error);
      auto g = rule_of(overrides, {"THING_GROUPS", "ThingGroups"}, true, rule_error);
      if (!a || !ty || !g) return failed(where + rule_error);
      th.attributes_rule = *a;
      th.type_rule = *ty;
      th.groups_rule = *g;
      out.thing = std::move(th);
    } else if (kind == "AWS::IoT::Certificate") {
      certificate_resource c;
      c.logical = logical;
      c.csr = text("CertificateSigningRequest");
      c.id = text("CertificateId");
      c.pem = text("CertificatePem");
      c.ca_pem = text("CACertificatePem");
      if (int(c.csr.has_value()) + int(c.id.has_value()) + int(c.pem.has_value()) != 1)
        return failed(where + "name the certificate one way: CertificateSigningRequest, CertificateId or CertificatePem");
      if (c.ca_pem && !c.pem) return failed(where + "CACertificatePem goes with CertificatePem");
      if (auto status = text("Status")) {
        c.status = upper(*status);
        if (c.status != "ACTIVE" && c.status != "INACTIVE") return failed(where + "Status must be ACTIVE or INACTIVE");
      }
      std::string rule_error;
      auto s = rule_of(overrides, {"Status", "STATUS"}, false, rule_error);
      if (!s) return failed(where + rule_error);
      c.status_rule = *s;
      out.certificate = std::move(c);
    } else {
      policy_resource p;
      p.logical = logical;
      auto name = text("PolicyName");
      const auto* doc = pr.if_contains("PolicyDocument");
      if (name.has_value() == (doc != nullptr)) return failed(where + "give PolicyName or PolicyDocument, not both");
      if (doc) {
        if (doc->is_string()) {
          boost::system::error_code ec;
          auto parsed = json::parse(doc->get_string(), ec);
          if (ec || !parsed.is_object()) return failed(where + "PolicyDocument is not a JSON object");
          p.document = std::string(doc->get_string());
        } else if (doc->is_object()) {
          p.document = json::serialize(*doc);
        } else {
          return failed(where + "PolicyDocument must be a JSON object or its text");
        }
        p.name = document_hash(*p.document);
      } else {
        p.name = *name;
      }
      out.policies.push_back(std::move(p));
    }
  }
  for (const auto& [key, value] : t.device_configuration) {
    auto resolved = ev.resolve(value);
    if (!resolved) return failed("");
    auto s = as_text(*resolved);
    if (!s) return failed("DeviceConfiguration." + std::string(key) + " must be a string (no nested objects)");
    out.device_configuration[std::string(key)] = *s;
  }
  return out;
}

}  // namespace fleetcore::provisioning
