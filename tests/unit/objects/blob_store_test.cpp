#include "objects/blob_store.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <string>

namespace fleetcore::objects {
namespace {

namespace fs = std::filesystem;

class blob_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fc-blobs-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  blob put(blob_store& s, std::string_view bytes, std::size_t piece = 7) {
    auto w = s.create();
    EXPECT_TRUE(w);
    for (std::size_t i = 0; i < bytes.size(); i += piece) EXPECT_FALSE(w->write(bytes.substr(i, piece)));
    auto b = w->commit();
    EXPECT_TRUE(b);
    return *b;
  }
  std::string get(const blob_store& s, std::string_view sha, std::uint64_t offset, std::uint64_t length) {
    std::string out;
    auto ec = s.read(sha, offset, length, [&](std::string_view piece) {
      out += piece;
      return true;
    });
    EXPECT_FALSE(ec) << ec.message();
    return out;
  }
  fs::path dir_;
};

TEST_F(blob_store_test, stores_bytes_under_their_sha256_with_their_md5) {
  blob_store s(dir_);
  auto b = put(s, "abc");
  EXPECT_EQ(b.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2 vector
  EXPECT_EQ(b.md5, "900150983cd24fb0d6963f7d28e17f72");                                  // RFC 1321 vector
  EXPECT_EQ(b.size, 3u);
  EXPECT_TRUE(fs::exists(dir_ / "ba" / b.sha256));
  EXPECT_EQ(fs::status(dir_).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(get(s, b.sha256, 0, 3), "abc");
  EXPECT_EQ(*s.size(b.sha256), 3u);
}

// A download that started reads to its end even if the object is replaced or deleted meanwhile.
TEST_F(blob_store_test, an_open_blob_stays_readable_after_its_removal) {
  blob_store s(dir_);
  auto b = put(s, "firmware image");
  auto r = s.open(b.sha256);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 14u);
  s.remove(b.sha256);
  EXPECT_FALSE(s.open(b.sha256));
  std::string out;
  EXPECT_FALSE(r->read(9, 5, [&](std::string_view piece) {
    out += piece;
    return true;
  }));
  EXPECT_EQ(out, "image");
  EXPECT_EQ(r->read(10, 5, [](std::string_view) { return true; }), boost::system::errc::invalid_argument);
}

TEST_F(blob_store_test, reads_any_range_of_a_large_blob_in_pieces) {
  blob_store s(dir_);
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 251);
  auto b = put(s, big, 100'000);
  EXPECT_EQ(b.size, big.size());
  EXPECT_EQ(get(s, b.sha256, 0, big.size()), big);
  EXPECT_EQ(get(s, b.sha256, 1'000'001, 70'000), big.substr(1'000'001, 70'000));
  EXPECT_EQ(get(s, b.sha256, big.size(), 0), "");
  int pieces = 0;
  s.read(b.sha256, 0, big.size(), [&](std::string_view p) {
    EXPECT_LE(p.size(), 64u * 1024);
    return ++pieces < 3;  // the reader can stop early
  });
  EXPECT_EQ(pieces, 3);
  EXPECT_EQ(s.read(b.sha256, big.size() - 1, 2, [](std::string_view) { return true; }),
            boost::system::errc::invalid_argument);
  EXPECT_EQ(s.read(std::string(64, '0'), 0, 1, [](std::string_view) { return true; }),
            boost::system::errc::no_such_file_or_directory);
  EXPECT_EQ(s.read("../../etc/passwd", 0, 1, [](std::string_view) { return true; }),
            boost::system::errc::no_such_file_or_directory);  // only addresses name files
}

TEST_F(blob_store_test, same_content_is_one_file_and_unfinished_uploads_leave_nothing) {
  blob_store s(dir_);
  auto a = put(s, "firmware v1");
  auto again = put(s, "firmware v1", 3);
  EXPECT_EQ(a.sha256, again.sha256);
  {
    auto w = s.create();
    ASSERT_TRUE(w);
    EXPECT_FALSE(w->write("half an upload"));
  }  // dropped without commit
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  auto b = put(s, "firmware v2");
  auto w = s.create();  // a crash mid-upload leaves this temporary file behind
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->write("partial"));
  blob_store after_restart(dir_);
  EXPECT_EQ(after_restart.collect({a.sha256}), 2u);  // v2 (unreferenced) and the partial upload
  EXPECT_TRUE(after_restart.size(a.sha256));
  EXPECT_FALSE(after_restart.size(b.sha256));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

// A write that failed part-way spoils the upload: its bytes are no longer what was hashed, so it can
// never be named (a disk that filled up is the usual cause; a file size limit stands in for it here).
TEST_F(blob_store_test, a_failed_write_spoils_the_upload) {
  blob_store s(dir_);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{5, 5};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    auto w = s.create();
    bool write_failed = w && w->write("0123456789");
    bool commit_failed = w && !w->commit();
    bool later_write_failed = w && w->write("x");
    ::_exit(write_failed && commit_failed && later_write_failed ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(s.collect({}), 1u);  // only the spoiled upload's temporary file: nothing was named
  auto w = s.create();
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->commit());
  EXPECT_FALSE(w->commit());  // once
  EXPECT_TRUE(w->write("late"));
}

}  // namespace
}  // namespace fleetcore::objects
