#include "objects/s3_xml.hpp"

#include <expat.h>

#include <charconv>
#include <functional>
#include <memory>

namespace fleetcore::objects {

namespace {

/// Element paths and their text, from expat's callbacks: `on_end(path, text)` for each element.
struct reader {
  std::vector<std::string> path;
  std::string text;
  std::function<void(const std::vector<std::string>&, const std::string&)> on_end;

  static void start(void* self, const XML_Char* name, const XML_Char**) {
    auto* r = static_cast<reader*>(self);
    r->path.emplace_back(name);
    r->text.clear();
  }
  static void end(void* self, const XML_Char*) {
    auto* r = static_cast<reader*>(self);
    r->on_end(r->path, r->text);
    r->path.pop_back();
    r->text.clear();
  }
  static void chars(void* self, const XML_Char* s, int n) {
    auto* r = static_cast<reader*>(self);
    if (r->text.size() < 4096) r->text.append(s, static_cast<std::size_t>(n));
  }
};

/// Parses `xml` whole; false if it is not well-formed.
bool read_xml(std::string_view xml, reader& r) {
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> p(XML_ParserCreate("UTF-8"), &XML_ParserFree);
  if (!p) return false;
  XML_SetParamEntityParsing(p.get(), XML_PARAM_ENTITY_PARSING_NEVER);
  XML_SetUserData(p.get(), &r);
  XML_SetElementHandler(p.get(), &reader::start, &reader::end);
  XML_SetCharacterDataHandler(p.get(), &reader::chars);
  return XML_Parse(p.get(), xml.data(), static_cast<int>(xml.size()), XML_TRUE) == XML_STATUS_OK;
}

std::string trim(std::string s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && space(s[i])) ++i;
  return s.substr(i);
}

}  // namespace

std::optional<std::vector<completed_part>> parse_complete_multipart_upload(std::string_view xml) {
  if (xml.size() > (1 << 20)) return std::nullopt;
  std::vector<completed_part> parts;
  completed_part current;
  bool ok = true;
  reader r;
  r.on_end = [&](const std::vector<std::string>& path, const std::string& text) {
    if (path.size() == 1 && path[0] != "CompleteMultipartUpload") ok = false;
    if (path.size() == 2 && path[1] == "Part") {
      if (current.number == 0 || current.etag.empty()) ok = false;
      parts.push_back(std::move(current));
      current = {};
    }
    if (path.size() == 3 && path[1] == "Part") {
      auto value = trim(text);
      if (path[2] == "PartNumber") {
        int n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > 10000) ok = false;
        current.number = n;
      } else if (path[2] == "ETag") {
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        current.etag = std::move(value);
      }
    }
  };
  if (!read_xml(xml, r) || !ok || parts.empty()) return std::nullopt;
  return parts;
}

std::optional<std::string> parse_location_constraint(std::string_view xml) {
  if (xml.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::string();
  if (xml.size() > (1 << 16)) return std::nullopt;
  std::string constraint;
  reader r;
  r.on_end = [&](const std::vector<std::string>& path, const std::string& text) {
    if (path.size() == 2 && path[0] == "CreateBucketConfiguration" && path[1] == "LocationConstraint")
      constraint = trim(text);
  };
  if (!read_xml(xml, r)) return std::nullopt;
  return constraint;
}

std::optional<std::string> parse_versioning_status(std::string_view xml) {
  if (xml.size() > (1 << 16)) return std::nullopt;
  std::string status;
  bool ok = true;
  reader r;
  r.on_end = [&](const std::vector<std::string>& path, const std::string& text) {
    if (path.size() == 1 && path[0] != "VersioningConfiguration") ok = false;
    if (path.size() == 2 && path[1] == "Status") status = trim(text);
  };
  if (!read_xml(xml, r) || !ok) return std::nullopt;
  return status;
}

}  // namespace fleetcore::objects
