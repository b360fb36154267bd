#include "objects/catalog.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <variant>

namespace fleetcore::objects {
namespace {

object_entry obj(std::string key, std::string blob = "blob1") {
  object_entry o;
  o.key = std::move(key);
  o.blob = std::move(blob);
  o.etag = "5d41402abc4b2a76b9719d911017c592";
  o.size = 5;
  o.last_modified_ms = 1000;
  o.headers["content-type"] = "text/plain";
  o.metadata["owner"] = "ops";
  return o;
}

/// The documents `ops` leave behind, applied in order to `docs` (as the store would).
void replay(std::vector<storage::document>& docs, const std::vector<storage::operation>& ops) {
  for (const auto& op : ops) {
    if (const auto* put = std::get_if<storage::op::put_document>(&op)) {
      std::erase_if(docs, [&](const auto& d) { return d.kind == put->doc.kind && d.key == put->doc.key; });
      docs.push_back(put->doc);
    } else if (const auto* del = std::get_if<storage::op::delete_document>(&op)) {
      std::erase_if(docs, [&](const auto& d) { return d.kind == del->kind && d.key == del->key; });
    }
  }
}

std::vector<std::string> keys_of(const list_result& r) {
  std::vector<std::string> out;
  for (const auto* o : r.contents) out.push_back(o->key);
  return out;
}

TEST(ObjectsCatalog, BucketNamesFollowS3Rules) {
  for (const std::string good : {"abc", "my-bucket.v1", "a1b", "123", "a.b-c"})
    EXPECT_TRUE(catalog::valid_bucket_name(good)) << good;
  EXPECT_TRUE(catalog::valid_bucket_name(std::string(63, 'a')));
  EXPECT_FALSE(catalog::valid_bucket_name(std::string(64, 'a')));
  for (const std::string bad : {"ab", "MyBucket", "a_b", "-abc", "abc-", "a..b", "192.168.1.1", "xn--abc", "sthree-x",
                                "abc-s3alias", "abc--ol-s3", ""})
    EXPECT_FALSE(catalog::valid_bucket_name(bad)) << bad;
  EXPECT_TRUE(catalog::valid_key("a/b c+ü//../."));
  EXPECT_FALSE(catalog::valid_key(""));
  EXPECT_FALSE(catalog::valid_key(std::string(1025, 'k')));
  EXPECT_TRUE(catalog::valid_key(std::string(1024, 'k')));
  EXPECT_FALSE(catalog::valid_key("\xff\xfe"));      // not UTF-8
  EXPECT_FALSE(catalog::valid_key("\xed\xa0\x80"));  // a surrogate
}

TEST(ObjectsCatalog, BucketsAndObjectsSurviveAReload) {
  catalog c;
  std::vector<storage::operation> ops;
  std::optional<std::string> released;
  ASSERT_EQ(c.create_bucket("bk1", 42, ops), catalog_error::none);
  EXPECT_EQ(c.create_bucket("bk1", 43, ops), catalog_error::bucket_already_owned);
  EXPECT_EQ(c.create_bucket("BK1", 43, ops), catalog_error::invalid_bucket_name);
  ASSERT_EQ(c.put_object("bk1", obj("dir/a b+c"), "", ops, released), catalog_error::none);
  EXPECT_EQ(c.put_object("nope", obj("k"), "", ops, released), catalog_error::no_such_bucket);
  EXPECT_EQ(c.put_object("bk1", obj(std::string(1025, 'k')), "", ops, released), catalog_error::invalid_key);
  std::vector<storage::document> docs;
  replay(docs, ops);

  catalog again;
  again.load(docs);
  ASSERT_NE(again.bucket("bk1"), nullptr);
  EXPECT_EQ(again.bucket("bk1")->created_ms, 42);
  const auto* o = again.object("bk1", "dir/a b+c");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->etag, "5d41402abc4b2a76b9719d911017c592");
  EXPECT_EQ(o->size, 5u);
  EXPECT_EQ(o->headers.at("content-type"), "text/plain");
  EXPECT_EQ(o->metadata.at("owner"), "ops");
  EXPECT_EQ(again.blob_references(), (std::set<std::string, std::less<>>{"blob1"}));
}

// A blob is released when the last object referencing it is replaced or deleted, not before.
TEST(ObjectsCatalog, SharedBlobsAreReleasedWithTheirLastObject) {
  catalog c;
  std::vector<storage::operation> ops;
  std::optional<std::string> released;
  std::optional<object_entry> deleted;
  c.create_bucket("bk1", 0, ops);
  c.put_object("bk1", obj("x", "same"), "", ops, released);
  c.put_object("bk1", obj("y", "same"), "", ops, released);
  c.put_object("bk1", obj("x", "other"), "", ops, released);  // x replaced: "same" still used by y
  EXPECT_FALSE(released);
  EXPECT_EQ(c.delete_object("bk1", "y", "", "", ops, released, deleted), catalog_error::none);
  EXPECT_EQ(released, "same");
  EXPECT_EQ(c.delete_object("bk1", "y", "", "", ops, released, deleted), catalog_error::none);  // missing: no error
  EXPECT_FALSE(released);
  EXPECT_EQ(c.delete_bucket("bk1", ops), catalog_error::bucket_not_empty);
  c.delete_object("bk1", "x", "", "", ops, released, deleted);
  EXPECT_EQ(released, "other");
  EXPECT_EQ(c.delete_bucket("bk1", ops), catalog_error::none);
  EXPECT_EQ(c.delete_bucket("bk1", ops), catalog_error::no_such_bucket);
  std::vector<storage::document> docs;
  replay(docs, ops);
  EXPECT_TRUE(docs.empty());
}

class ObjectsListing : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<storage::operation> ops;
    std::optional<std::string> released;
    c.create_bucket("bkt", 0, ops);
    for (auto k : {"a", "dir/1", "dir/2", "dir/sub/3", "dir/sub/4", "dir2/x", "e", "f/g"})
      c.put_object("bkt", obj(k), "", ops, released);
  }
  /// Every page of a listing, joined: keys and common prefixes in the order listed.
  std::vector<std::string> all_pages(list_request req, int* pages = nullptr) {
    std::vector<std::string> out;
    int n = 0;
    while (true) {
      list_result r;
      EXPECT_EQ(c.list("bkt", req, r), catalog_error::none);
      ++n;
      EXPECT_LE(r.key_count(), static_cast<std::size_t>(req.max_keys));
      for (auto& k : keys_of(r)) out.push_back(k);
      for (auto& p : r.common_prefixes) out.push_back(p);
      if (!r.truncated) break;
      EXPECT_FALSE(r.next_continuation_token.empty());
      req.continuation_token = r.next_continuation_token;
      if (n > 20) break;
    }
    if (pages) *pages = n;
    return out;
  }
  catalog c;
};

TEST_F(ObjectsListing, PrefixAndDelimiterAsAwsS3Ls) {
  list_result r;
  ASSERT_EQ(c.list("bkt", {"", "/", 1000, std::nullopt, ""}, r), catalog_error::none);
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"a", "e"}));
  EXPECT_EQ(r.common_prefixes, (std::vector<std::string>{"dir/", "dir2/", "f/"}));
  EXPECT_EQ(r.key_count(), 5u);
  EXPECT_FALSE(r.truncated);

  list_result sub;
  c.list("bkt", {"dir/", "/", 1000, std::nullopt, ""}, sub);
  EXPECT_EQ(keys_of(sub), (std::vector<std::string>{"dir/1", "dir/2"}));
  EXPECT_EQ(sub.common_prefixes, (std::vector<std::string>{"dir/sub/"}));

  list_result recursive;
  c.list("bkt", {"dir", "", 1000, std::nullopt, ""}, recursive);
  EXPECT_EQ(keys_of(recursive), (std::vector<std::string>{"dir/1", "dir/2", "dir/sub/3", "dir/sub/4", "dir2/x"}));

  list_result after;
  c.list("bkt", {"", "", 1000, std::nullopt, "dir/sub/3"}, after);
  EXPECT_EQ(keys_of(after), (std::vector<std::string>{"dir/sub/4", "dir2/x", "e", "f/g"}));
  EXPECT_EQ(c.list("nope", {}, after), catalog_error::no_such_bucket);
}

// Pages of any size list every key and common prefix exactly once, in order; a common prefix counts
// as one toward max-keys and its keys are never listed after it.
TEST_F(ObjectsListing, PagesListEverythingOnce) {
  const std::vector<std::string> flat = {"a", "dir/1", "dir/2", "dir/sub/3", "dir/sub/4", "dir2/x", "e", "f/g"};
  for (int size = 1; size <= 9; ++size) {
    int pages = 0;
    EXPECT_EQ(all_pages({"", "", size, std::nullopt, ""}, &pages), flat) << size;
    EXPECT_EQ(pages, (8 + size - 1) / size) << size;  // no empty last page
    auto grouped = all_pages({"", "/", size, std::nullopt, ""});
    std::sort(grouped.begin(), grouped.end());
    EXPECT_EQ(grouped, (std::vector<std::string>{"a", "dir/", "dir2/", "e", "f/"})) << size;
  }
  list_result r;
  list_request bad;
  bad.continuation_token = "zz";
  EXPECT_EQ(c.list("bkt", bad, r), catalog_error::invalid_continuation);
}

}  // namespace
}  // namespace fleetcore::objects

namespace fleetcore::objects {
namespace {

// An upload in progress, its parts and their blobs survive a reload; completing it makes the object
// and releases the parts' blobs that nothing else references.
TEST(ObjectsCatalog, UploadsSurviveAReloadAndEndOnce) {
  catalog c;
  std::vector<storage::operation> ops;
  std::optional<std::string> released;
  c.create_bucket("bkt", 0, ops);
  upload_entry u;
  u.id = "u1";
  u.bucket = "bkt";
  u.key = "big";
  u.metadata["build"] = "7";
  ASSERT_EQ(c.create_upload(u, ops), catalog_error::none);
  ASSERT_EQ(c.put_part("u1", 1, {"p1", "e1", 10}, ops, released), catalog_error::none);
  ASSERT_EQ(c.put_part("u1", 2, {"p2", "e2", 5}, ops, released), catalog_error::none);
  ASSERT_EQ(c.put_part("u1", 2, {"p3", "e3", 6}, ops, released), catalog_error::none);  // replaced
  EXPECT_EQ(released, "p2");
  EXPECT_EQ(c.put_part("u2", 1, {"p9", "e9", 1}, ops, released), catalog_error::no_such_upload);
  std::vector<storage::document> docs;
  replay(docs, ops);
  ops.clear();

  catalog again;
  again.load(docs);
  const auto* got = again.upload("u1", "bkt", "big");
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->metadata.at("build"), "7");
  ASSERT_EQ(got->parts.size(), 2u);
  EXPECT_EQ(got->parts.at(2).blob, "p3");
  EXPECT_EQ(again.upload("u1", "bkt", "other"), nullptr);
  EXPECT_EQ(again.blob_references(), (std::set<std::string, std::less<>>{"p1", "p3"}));
  EXPECT_EQ(again.delete_bucket("bkt", ops), catalog_error::bucket_not_empty);

  object_entry o = obj("big", "whole");
  std::vector<std::string> gone;
  ASSERT_EQ(again.end_upload("u1", o, "", ops, gone), catalog_error::none);
  EXPECT_EQ(gone, (std::vector<std::string>{"p1", "p3"}));
  EXPECT_EQ(again.end_upload("u1", std::nullopt, "", ops, gone), catalog_error::no_such_upload);
  ASSERT_NE(again.object("bkt", "big"), nullptr);
  replay(docs, ops);
  catalog third;
  third.load(docs);
  EXPECT_EQ(third.upload("u1", "bkt", "big"), nullptr);
  EXPECT_EQ(third.blob_references(), (std::set<std::string, std::less<>>{"whole"}));
}

// Versioning as S3 keeps it: enabled, every PUT is a new version and DELETE adds a marker; a version
// deleted by id goes for good and the next newest becomes the latest; suspended, the "null" version is
// replaced. The catalog rebuilt from its documents is the same.
TEST(ObjectsCatalog, VersionsMarkersAndTheirStorage) {
  catalog c;
  std::vector<storage::operation> ops;
  std::optional<std::string> released;
  std::optional<object_entry> deleted;
  c.create_bucket("bk1", 0, ops);
  c.put_object("bk1", obj("k", "b0"), "", ops, released);  // before versioning: version "null"
  ASSERT_EQ(c.set_versioning("bk1", "Enabled", ops), catalog_error::none);
  c.put_object("bk1", obj("k", "b1"), "v1", ops, released);
  c.put_object("bk1", obj("k", "b2"), "v2", ops, released);
  EXPECT_FALSE(released);
  EXPECT_EQ(c.object("bk1", "k")->version_id, "v2");
  EXPECT_EQ(c.version("bk1", "k", "null")->blob, "b0");
  EXPECT_EQ(c.version("bk1", "k", "v1")->blob, "b1");
  EXPECT_EQ(c.version("bk1", "k", "v9"), nullptr);

  ASSERT_EQ(c.delete_object("bk1", "k", "", "m1", ops, released, deleted), catalog_error::none);
  ASSERT_TRUE(deleted && deleted->delete_marker);
  EXPECT_EQ(deleted->version_id, "m1");
  EXPECT_EQ(c.object("bk1", "k"), nullptr);  // reads as deleted
  EXPECT_TRUE(c.version("bk1", "k", "")->delete_marker);
  list_result listed;
  c.list("bk1", {}, listed);
  EXPECT_TRUE(listed.contents.empty());
  versions_result all;
  c.list_versions("bk1", {}, all);
  ASSERT_EQ(all.versions.size(), 4u);
  EXPECT_TRUE(all.versions[0].latest && all.versions[0].entry->delete_marker);
  EXPECT_EQ(all.versions[1].entry->version_id, "v2");
  EXPECT_EQ(all.versions[3].entry->version_id, "null");
  versions_result page;
  c.list_versions("bk1", {"", "", "", 2}, page);
  ASSERT_TRUE(page.truncated);
  versions_result rest;
  c.list_versions("bk1", {"", page.next_key_marker, page.next_version_id_marker, 10}, rest);
  ASSERT_EQ(rest.versions.size(), 2u);
  EXPECT_EQ(rest.versions[0].entry->version_id, "v1");

  // Deleting the marker by id brings v2 back; deleting v2 by id makes v1 the latest.
  c.delete_object("bk1", "k", "m1", "", ops, released, deleted);
  EXPECT_EQ(c.object("bk1", "k")->version_id, "v2");
  c.delete_object("bk1", "k", "v2", "", ops, released, deleted);
  EXPECT_EQ(released, "b2");
  EXPECT_EQ(c.object("bk1", "k")->version_id, "v1");
  EXPECT_EQ(c.delete_object("bk1", "k", "v2", "", ops, released, deleted), catalog_error::no_such_version);

  // Suspended: the "null" version is replaced, the others stay.
  c.set_versioning("bk1", "Suspended", ops);
  c.put_object("bk1", obj("k", "b3"), "ignored", ops, released);
  EXPECT_EQ(released, "b0");  // the old "null" version's bytes
  EXPECT_EQ(c.object("bk1", "k")->version_id, "null");
  EXPECT_EQ(c.version("bk1", "k", "v1")->blob, "b1");
  EXPECT_EQ(c.delete_bucket("bk1", ops), catalog_error::bucket_not_empty);

  // Rebuilt from what was stored: the same versions, in the same order, the same references.
  std::map<std::pair<std::string, std::string>, std::string> docs;
  for (const auto& op : ops) {
    if (const auto* put = std::get_if<storage::op::put_document>(&op)) docs[{put->doc.kind, put->doc.key}] = put->doc.body;
    if (const auto* del = std::get_if<storage::op::delete_document>(&op)) docs.erase({del->kind, del->key});
  }
  std::vector<storage::document> stored;
  for (const auto& [k, body] : docs) stored.push_back({k.first, k.second, body});
  catalog again;
  again.load(stored);
  EXPECT_EQ(again.bucket("bk1")->versioning, "Suspended");
  EXPECT_EQ(again.object("bk1", "k")->blob, "b3");
  versions_result reloaded;
  again.list_versions("bk1", {}, reloaded);
  ASSERT_EQ(reloaded.versions.size(), 2u);
  EXPECT_EQ(reloaded.versions[1].entry->version_id, "v1");
  EXPECT_EQ(again.blob_references(), (std::set<std::string, std::less<>>{"b1", "b3"}));
}

}  // namespace
}  // namespace fleetcore::objects
