#include "objects/catalog.hpp"

#include "common/hex.hpp"
#include "common/json_members.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <set>

namespace fleetcore::objects {

namespace json = boost::json;

namespace {

constexpr std::string_view k_bucket_kind = "s3_bucket";
constexpr std::string_view k_object_kind = "s3_object";
constexpr std::string_view k_upload_kind = "s3_upload";
constexpr std::string_view k_part_kind = "s3_part";
constexpr std::string_view k_version_kind = "s3_version";

std::string part_doc_key(std::string_view upload, int number) { return fmt::format("{}\t{:05d}", upload, number); }

std::string object_doc_key(std::string_view bucket, std::string_view key) {
  return std::string(bucket) + '\t' + std::string(key);  // bucket names have no tab
}

json::object map_json(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

std::string version_doc_key(std::string_view bucket, std::string_view key, std::string_view version) {
  // A key may hold tabs; a version id never does: it is what follows the last one.
  return object_doc_key(bucket, key) + '\t' + std::string(version);
}

json::object entry_json(const object_entry& o) {
  json::object doc{{"blob", o.blob},
                   {"etag", o.etag},
                   {"size", o.size},
                   {"lastModified", o.last_modified_ms},
                   {"headers", map_json(o.headers)},
                   {"metadata", map_json(o.metadata)},
                   {"versionId", o.version_id},
                   {"seq", o.seq}};
  if (o.delete_marker) doc["deleteMarker"] = true;
  return doc;
}

std::map<std::string, std::string> json_map(const json::object& o, std::string_view member);

object_entry entry_from(const json::object& o, std::string key) {
  object_entry e;
  e.key = std::move(key);
  e.blob = std::string(common::text_member(o, "blob").value_or(""));
  e.etag = std::string(common::text_member(o, "etag").value_or(""));
  e.size = static_cast<std::uint64_t>(common::int_member(o, "size").value_or(0));
  e.last_modified_ms = common::int_member(o, "lastModified").value_or(0);
  e.headers = json_map(o, "headers");
  e.metadata = json_map(o, "metadata");
  e.version_id = std::string(common::text_member(o, "versionId").value_or("null"));
  e.seq = static_cast<std::uint64_t>(common::int_member(o, "seq").value_or(0));
  e.delete_marker = common::bool_member(o, "deleteMarker").value_or(false);
  return e;
}

std::map<std::string, std::string> json_map(const json::object& o, std::string_view member) {
  std::map<std::string, std::string> out;
  if (const auto* v = o.if_contains(member); v && v->is_object())
    for (const auto& kv : v->as_object())
      if (kv.value().is_string()) out.emplace(kv.key(), kv.value().as_string());
  return out;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    static constexpr std::uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_of[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

}  // namespace

bool catalog::valid_bucket_name(std::string_view name) {
  if (name.size() < 3 || name.size() > 63) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name.front()) || !alnum(name.back())) return false;
  if (name.find("..") != std::string_view::npos) return false;
  // Not an IPv4 address (four dot-separated groups of digits).
  if (std::count(name.begin(), name.end(), '.') == 3 &&
      std::all_of(name.begin(), name.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); }))
    return false;
  for (auto prefix : {"xn--", "sthree-", "amzn-s3-demo-"})
    if (name.starts_with(prefix)) return false;
  for (auto suffix : {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"})
    if (name.ends_with(suffix)) return false;
  return true;
}

bool catalog::valid_key(std::string_view key) { return !key.empty() && key.size() <= 1024 && valid_utf8(key); }

void catalog::load(const std::vector<storage::document>& documents) {
  buckets_.clear();
  uploads_.clear();
  references_.clear();
  for (const auto& d : documents) {
    if (d.kind != k_bucket_kind) continue;
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    bucket_entry b;
    b.name = d.key;
    if (!ec && v.is_object()) {
      b.created_ms = common::int_member(v.as_object(), "created").value_or(0);
      b.versioning = std::string(common::text_member(v.as_object(), "versioning").value_or(""));
    }
    buckets_.emplace(d.key, std::move(b));
  }
  for (const auto& d : documents) {
    if (d.kind != k_object_kind) continue;
    auto tab = d.key.find('\t');
    auto b = tab == std::string::npos ? buckets_.end() : buckets_.find(std::string_view(d.key).substr(0, tab));
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (b == buckets_.end() || ec || !v.is_object()) continue;  // its bucket went first (never: deleted empty)
    object_entry e = entry_from(v.as_object(), d.key.substr(tab + 1));
    next_seq_ = std::max(next_seq_, e.seq + 1);
    reference(e.blob);
    b->second.objects.insert_or_assign(e.key, std::move(e));
  }
  for (const auto& d : documents) {
    if (d.kind != k_version_kind) continue;
    auto tab = d.key.find('\t'), last = d.key.rfind('\t');
    auto b = tab == std::string::npos ? buckets_.end() : buckets_.find(std::string_view(d.key).substr(0, tab));
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (b == buckets_.end() || last == tab || ec || !v.is_object()) continue;
    object_entry e = entry_from(v.as_object(), d.key.substr(tab + 1, last - tab - 1));
    next_seq_ = std::max(next_seq_, e.seq + 1);
    if (!e.delete_marker) reference(e.blob);
    b->second.history[e.key].push_back(std::move(e));
  }
  for (auto& [name, b] : buckets_)
    for (auto& [key, versions] : b.history)
      std::sort(versions.begin(), versions.end(), [](const auto& x, const auto& y) { return x.seq > y.seq; });
  for (const auto& d : documents) {
    if (d.kind != k_upload_kind) continue;
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    upload_entry u;
    u.id = d.key;
    u.bucket = std::string(common::text_member(o, "bucket").value_or(""));
    u.key = std::string(common::text_member(o, "key").value_or(""));
    u.created_ms = common::int_member(o, "created").value_or(0);
    u.headers = json_map(o, "headers");
    u.metadata = json_map(o, "metadata");
    if (buckets_.contains(u.bucket)) uploads_.emplace(u.id, std::move(u));
  }
  for (const auto& d : documents) {
    if (d.kind != k_part_kind) continue;
    auto tab = d.key.find('\t');
    auto u = tab == std::string::npos ? uploads_.end() : uploads_.find(std::string_view(d.key).substr(0, tab));
    boost::system::error_code ec;
    auto v = json::parse(d.body, ec);
    if (u == uploads_.end() || ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    upload_entry::part p;
    p.blob = std::string(common::text_member(o, "blob").value_or(""));
    p.etag = std::string(common::text_member(o, "etag").value_or(""));
    p.size = static_cast<std::uint64_t>(common::int_member(o, "size").value_or(0));
    reference(p.blob);
    u->second.parts.insert_or_assign(std::atoi(d.key.c_str() + tab + 1), std::move(p));
  }
}

catalog_error catalog::create_bucket(std::string_view name, std::int64_t now_ms, std::vector<storage::operation>& ops) {
  if (!valid_bucket_name(name)) return catalog_error::invalid_bucket_name;
  if (buckets_.contains(name)) return catalog_error::bucket_already_owned;
  bucket_entry b;
  b.name = std::string(name);
  b.created_ms = now_ms;
  ops.push_back(storage::op::put_document{
      {std::string(k_bucket_kind), b.name, json::serialize(json::object{{"created", now_ms}})}});
  buckets_.emplace(b.name, std::move(b));
  return catalog_error::none;
}

catalog_error catalog::delete_bucket(std::string_view name, std::vector<storage::operation>& ops) {
  auto it = buckets_.find(name);
  if (it == buckets_.end()) return catalog_error::no_such_bucket;
  if (!it->second.objects.empty() || !it->second.history.empty()) return catalog_error::bucket_not_empty;
  for (const auto& [id, u] : uploads_)
    if (u.bucket == name) return catalog_error::bucket_not_empty;
  ops.push_back(storage::op::delete_document{std::string(k_bucket_kind), it->first});
  buckets_.erase(it);
  return catalog_error::none;
}

const bucket_entry* catalog::bucket(std::string_view name) const {
  auto it = buckets_.find(name);
  return it == buckets_.end() ? nullptr : &it->second;
}

std::vector<const bucket_entry*> catalog::buckets() const {
  std::vector<const bucket_entry*> out;
  for (const auto& [name, b] : buckets_) out.push_back(&b);
  return out;
}

catalog_error catalog::set_versioning(std::string_view bucket, std::string_view status,
                                      std::vector<storage::operation>& ops) {
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return catalog_error::no_such_bucket;
  b->second.versioning = std::string(status);
  ops.push_back(storage::op::put_document{
      {std::string(k_bucket_kind), b->first,
       json::serialize(json::object{{"created", b->second.created_ms}, {"versioning", b->second.versioning}})}});
  return catalog_error::none;
}

void catalog::store_current(std::string_view bucket, const object_entry& o, std::vector<storage::operation>& ops) const {
  ops.push_back(storage::op::put_document{
      {std::string(k_object_kind), object_doc_key(bucket, o.key), json::serialize(entry_json(o))}});
}

void catalog::store_version(std::string_view bucket, const object_entry& o, std::vector<storage::operation>& ops) const {
  ops.push_back(storage::op::put_document{
      {std::string(k_version_kind), version_doc_key(bucket, o.key, o.version_id), json::serialize(entry_json(o))}});
}

void catalog::unstore_version(std::string_view bucket, const object_entry& o, std::vector<storage::operation>& ops) const {
  ops.push_back(storage::op::delete_document{std::string(k_version_kind), version_doc_key(bucket, o.key, o.version_id)});
}

void catalog::drop_null_version(bucket_entry& b, const std::string& key, std::vector<storage::operation>& ops,
                                std::optional<std::string>& released) {
  auto h = b.history.find(key);
  if (h == b.history.end()) return;
  auto& versions = h->second;
  auto it = std::find_if(versions.begin(), versions.end(), [](const auto& v) { return v.version_id == "null"; });
  if (it == versions.end()) return;
  unstore_version(b.name, *it, ops);
  if (!it->delete_marker) released = release(it->blob);
  versions.erase(it);
  if (versions.empty()) b.history.erase(h);
}

catalog_error catalog::put_object(std::string_view bucket, object_entry o, std::string_view new_version_id,
                                  std::vector<storage::operation>& ops, std::optional<std::string>& released) {
  released.reset();
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return catalog_error::no_such_bucket;
  if (!valid_key(o.key)) return catalog_error::invalid_key;
  auto& bk = b->second;
  o.delete_marker = false;
  o.seq = next_seq_++;
  o.version_id = bk.versioning == "Enabled" ? std::string(new_version_id) : "null";
  reference(o.blob);
  auto current = bk.objects.find(o.key);
  if (bk.versioning.empty() || (current != bk.objects.end() && current->second.version_id == "null" && bk.versioning == "Suspended")) {
    // The object replaces the current one (unversioned, or the "null" version while suspended).
    if (current != bk.objects.end()) released = release(current->second.blob);
  } else {
    if (bk.versioning == "Suspended") drop_null_version(bk, o.key, ops, released);
    if (current != bk.objects.end()) {  // the current version becomes noncurrent
      store_version(bucket, current->second, ops);
      auto& versions = bk.history[o.key];
      versions.insert(versions.begin(), std::move(current->second));
    }
  }
  store_current(bucket, o, ops);
  const std::string key = o.key;
  bk.objects.insert_or_assign(key, std::move(o));
  return catalog_error::none;
}

const object_entry* catalog::object(std::string_view bucket, std::string_view key) const {
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return nullptr;
  auto it = b->second.objects.find(key);
  return it == b->second.objects.end() ? nullptr : &it->second;
}

const object_entry* catalog::version(std::string_view bucket, std::string_view key, std::string_view version_id) const {
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return nullptr;
  auto current = b->second.objects.find(key);
  if (current != b->second.objects.end() && (version_id.empty() || current->second.version_id == version_id))
    return &current->second;
  auto h = b->second.history.find(key);
  if (h == b->second.history.end() || h->second.empty()) return nullptr;
  if (version_id.empty()) return current == b->second.objects.end() ? &h->second.front() : nullptr;
  for (const auto& v : h->second)
    if (v.version_id == version_id) return &v;
  return nullptr;
}

catalog_error catalog::delete_object(std::string_view bucket, std::string_view key, std::string_view version_id,
                                     std::string_view new_version_id, std::vector<storage::operation>& ops,
                                     std::optional<std::string>& released, std::optional<object_entry>& deleted) {
  released.reset();
  deleted.reset();
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return catalog_error::no_such_bucket;
  auto& bk = b->second;
  const std::string k(key);
  auto current = bk.objects.find(key);
  if (version_id.empty() && bk.versioning.empty()) {
    if (current == bk.objects.end()) return catalog_error::none;
    ops.push_back(storage::op::delete_document{std::string(k_object_kind), object_doc_key(bucket, key)});
    released = release(current->second.blob);
    bk.objects.erase(current);
    return catalog_error::none;
  }
  if (version_id.empty()) {
    // A delete marker becomes the latest version.
    object_entry marker;
    marker.key = k;
    marker.delete_marker = true;
    marker.seq = next_seq_++;
    marker.version_id = bk.versioning == "Enabled" ? std::string(new_version_id) : "null";
    if (current != bk.objects.end()) {
      ops.push_back(storage::op::delete_document{std::string(k_object_kind), object_doc_key(bucket, key)});
      if (current->second.version_id == "null" && bk.versioning == "Suspended") {
        released = release(current->second.blob);
      } else {
        store_version(bucket, current->second, ops);
        bk.history[k].insert(bk.history[k].begin(), std::move(current->second));
      }
      bk.objects.erase(current);
    }
    if (bk.versioning == "Suspended") drop_null_version(bk, k, ops, released);
    store_version(bucket, marker, ops);
    bk.history[k].insert(bk.history[k].begin(), marker);
    deleted = std::move(marker);
    return catalog_error::none;
  }
  // A version deleted for good.
  if (current != bk.objects.end() && current->second.version_id == version_id) {
    ops.push_back(storage::op::delete_document{std::string(k_object_kind), object_doc_key(bucket, key)});
    released = release(current->second.blob);
    deleted = std::move(current->second);
    bk.objects.erase(current);
    // The newest older version, if it is an object, is the latest now (a marker stays in the history).
    if (auto h = bk.history.find(key); h != bk.history.end() && !h->second.front().delete_marker) {
      object_entry promoted = std::move(h->second.front());
      h->second.erase(h->second.begin());
      unstore_version(bucket, promoted, ops);
      store_current(bucket, promoted, ops);
      if (h->second.empty()) bk.history.erase(h);
      bk.objects.emplace(k, std::move(promoted));
    }
    return catalog_error::none;
  }
  auto h = bk.history.find(key);
  if (h == bk.history.end()) return catalog_error::no_such_version;
  auto& versions = h->second;
  auto it = std::find_if(versions.begin(), versions.end(), [&](const auto& v) { return v.version_id == version_id; });
  if (it == versions.end()) return catalog_error::no_such_version;
  const bool was_latest = it == versions.begin() && current == bk.objects.end();
  unstore_version(bucket, *it, ops);
  if (!it->delete_marker) released = release(it->blob);
  deleted = std::move(*it);
  versions.erase(it);
  if (was_latest && !versions.empty() && !versions.front().delete_marker) {
    object_entry promoted = std::move(versions.front());
    versions.erase(versions.begin());
    unstore_version(bucket, promoted, ops);
    store_current(bucket, promoted, ops);
    bk.objects.emplace(k, std::move(promoted));
  }
  if (versions.empty()) bk.history.erase(h);
  return catalog_error::none;
}

catalog_error catalog::list_versions(std::string_view bucket, const versions_request& req, versions_result& out) const {
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return catalog_error::no_such_bucket;
  const auto& bk = b->second;
  const std::size_t max_keys = static_cast<std::size_t>(std::clamp(req.max_keys, 0, 1000));
  if (max_keys == 0) return catalog_error::none;  // as ListObjectsV2: an empty page
  // Keys in order, each key's versions newest first; resumed after (key marker, version id marker).
  std::set<std::string_view> keys;
  for (auto it = bk.objects.lower_bound(std::string_view(req.prefix)); it != bk.objects.end() && it->first.starts_with(req.prefix); ++it)
    keys.insert(it->first);
  for (auto it = bk.history.lower_bound(std::string_view(req.prefix)); it != bk.history.end() && it->first.starts_with(req.prefix); ++it)
    keys.insert(it->first);
  bool skipping_in_key = !req.key_marker.empty() && !req.version_id_marker.empty();
  for (auto key : keys) {
    if (!req.key_marker.empty() && (key < req.key_marker || (key == req.key_marker && req.version_id_marker.empty())))
      continue;
    std::vector<version_item> all;
    auto current = bk.objects.find(key);
    if (current != bk.objects.end()) all.push_back({&current->second, true});
    if (auto h = bk.history.find(key); h != bk.history.end())
      for (const auto& v : h->second) all.push_back({&v, all.empty()});
    for (const auto& item : all) {
      if (skipping_in_key && key == req.key_marker) {
        if (item.entry->version_id == req.version_id_marker) skipping_in_key = false;
        continue;
      }
      if (out.versions.size() == max_keys) {
        out.truncated = true;
        out.next_key_marker = std::string(out.versions.back().entry->key);
        out.next_version_id_marker = out.versions.back().entry->version_id;
        return catalog_error::none;
      }
      out.versions.push_back(item);
    }
  }
  return catalog_error::none;
}

catalog_error catalog::create_upload(upload_entry u, std::vector<storage::operation>& ops) {
  if (!buckets_.contains(u.bucket)) return catalog_error::no_such_bucket;
  if (!valid_key(u.key)) return catalog_error::invalid_key;
  u.parts.clear();
  json::object doc{{"bucket", u.bucket},
                   {"key", u.key},
                   {"created", u.created_ms},
                   {"headers", map_json(u.headers)},
                   {"metadata", map_json(u.metadata)}};
  ops.push_back(storage::op::put_document{{std::string(k_upload_kind), u.id, json::serialize(doc)}});
  uploads_.emplace(u.id, std::move(u));
  return catalog_error::none;
}

const upload_entry* catalog::upload(std::string_view id, std::string_view bucket, std::string_view key) const {
  auto it = uploads_.find(id);
  if (it == uploads_.end() || it->second.bucket != bucket || it->second.key != key) return nullptr;
  return &it->second;
}

catalog_error catalog::put_part(std::string_view id, int number, upload_entry::part p,
                                std::vector<storage::operation>& ops, std::optional<std::string>& released) {
  released.reset();
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return catalog_error::no_such_upload;
  json::object doc{{"blob", p.blob}, {"etag", p.etag}, {"size", p.size}};
  ops.push_back(storage::op::put_document{{std::string(k_part_kind), part_doc_key(id, number), json::serialize(doc)}});
  reference(p.blob);
  auto [part, added] = it->second.parts.try_emplace(number);
  if (!added) released = release(part->second.blob);
  part->second = std::move(p);
  return catalog_error::none;
}

catalog_error catalog::end_upload(std::string_view id, std::optional<object_entry> o, std::string_view new_version_id,
                                  std::vector<storage::operation>& ops, std::vector<std::string>& released) {
  auto it = uploads_.find(id);
  if (it == uploads_.end()) return catalog_error::no_such_upload;
  const std::string bucket = it->second.bucket;
  if (o) {
    std::optional<std::string> old;
    if (auto e = put_object(bucket, std::move(*o), new_version_id, ops, old); e != catalog_error::none) return e;
    if (old) released.push_back(std::move(*old));
  }
  for (const auto& [number, p] : it->second.parts) {
    ops.push_back(storage::op::delete_document{std::string(k_part_kind), part_doc_key(id, number)});
    if (auto gone = release(p.blob)) released.push_back(std::move(*gone));
  }
  ops.push_back(storage::op::delete_document{std::string(k_upload_kind), it->first});
  uploads_.erase(it);
  return catalog_error::none;
}

catalog_error catalog::list(std::string_view bucket, const list_request& req, list_result& out) const {
  auto b = buckets_.find(bucket);
  if (b == buckets_.end()) return catalog_error::no_such_bucket;
  const auto& objects = b->second.objects;
  // Where this page starts: strictly after the token's position ("k" + the last key listed, or "p" +
  // the last common prefix listed: every key under it is skipped), else after start-after.
  auto it = objects.begin();
  std::string skip_prefix;
  if (req.continuation_token) {
    auto position = common::unhex(*req.continuation_token);
    if (!position || position->empty() || ((*position)[0] != 'k' && (*position)[0] != 'p'))
      return catalog_error::invalid_continuation;
    const std::string_view after = std::string_view(*position).substr(1);
    it = objects.upper_bound(after);
    if ((*position)[0] == 'p') skip_prefix = std::string(after);
  } else if (!req.start_after.empty()) {
    it = objects.upper_bound(std::string_view(req.start_after));
  }
  // ... and not before the first key with the prefix.
  if (auto from_prefix = objects.lower_bound(std::string_view(req.prefix));
      it != objects.end() && (from_prefix == objects.end() || it->first < from_prefix->first))
    it = from_prefix;
  const std::size_t max_keys = static_cast<std::size_t>(std::clamp(req.max_keys, 0, 1000));
  if (max_keys == 0) return catalog_error::none;
  std::string last;  // "k<key>" or "p<prefix>" of the last entry listed
  for (; it != objects.end(); ++it) {
    std::string_view key = it->first;
    if (!key.starts_with(req.prefix)) break;  // keys are ordered: none further down has the prefix
    if (!skip_prefix.empty() && key.starts_with(skip_prefix)) continue;
    std::string_view common;
    if (!req.delimiter.empty()) {
      auto d = key.find(req.delimiter, req.prefix.size());
      if (d != std::string_view::npos) common = key.substr(0, d + req.delimiter.size());
    }
    if (out.key_count() == max_keys) {
      out.truncated = true;
      out.next_continuation_token = common::hex(last);
      return catalog_error::none;
    }
    if (!common.empty()) {
      out.common_prefixes.emplace_back(common);
      skip_prefix = std::string(common);
      last = "p" + skip_prefix;
    } else {
      out.contents.push_back(&it->second);
      last = "k" + std::string(key);
    }
  }
  return catalog_error::none;
}

std::set<std::string, std::less<>> catalog::blob_references() const {
  std::set<std::string, std::less<>> out;
  for (const auto& [blob, n] : references_) out.insert(blob);
  return out;
}

void catalog::reference(const std::string& blob) { ++references_[blob]; }

std::optional<std::string> catalog::release(const std::string& blob) {
  auto it = references_.find(blob);
  if (it == references_.end()) return std::nullopt;
  if (--it->second > 0) return std::nullopt;
  references_.erase(it);
  return blob;
}

}  // namespace fleetcore::objects
