#include "auth/pki.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

namespace fleetcore::auth {
namespace {

namespace fs = std::filesystem;

std::string bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

class pki_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fc_pki_" + std::to_string(std::random_device{}())) / "tls";
    pki_ = ensure_dev_pki(dir_);
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }

  /// The message ensure_dev_pki throws; fails the test if it does not throw.
  std::string refusal() {
    try {
      ensure_dev_pki(dir_);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "ensure_dev_pki did not refuse";
    return {};
  }

  fs::path dir_;
  dev_pki pki_;
};

TEST_F(pki_test, first_use_creates_a_ca_and_a_server_pair_and_keeps_them) {
  for (const auto& f : {pki_.ca_cert, pki_.ca_key, pki_.server_cert, pki_.server_key}) EXPECT_GT(fs::file_size(f), 0u);
  EXPECT_EQ(mode_of(pki_.ca_key), 0600u);
  EXPECT_EQ(mode_of(pki_.server_key), 0600u);
  EXPECT_TRUE(issued_by(read_cert(pki_.server_cert).get(), read_cert(pki_.ca_cert).get()));
  std::string ca = bytes(pki_.ca_cert), key = bytes(pki_.ca_key), server = bytes(pki_.server_cert);
  ensure_dev_pki(dir_);
  EXPECT_EQ(bytes(pki_.ca_cert), ca);
  EXPECT_EQ(bytes(pki_.ca_key), key);
  EXPECT_EQ(bytes(pki_.server_cert), server);
  for (const auto& e : fs::directory_iterator(dir_)) EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

// Issue 9 item 7: a backup without ca.crt must not silently replace the CA and its key.
TEST_F(pki_test, a_missing_ca_cert_is_refused_and_the_ca_key_kept) {
  std::string key = bytes(pki_.ca_key);
  fs::remove(pki_.ca_cert);
  EXPECT_NE(refusal().find(pki_.ca_cert.string() + " is missing"), std::string::npos);
  EXPECT_EQ(bytes(pki_.ca_key), key);
  EXPECT_FALSE(fs::exists(pki_.ca_cert));
}

TEST_F(pki_test, a_missing_ca_key_is_refused_and_the_ca_cert_kept) {
  std::string ca = bytes(pki_.ca_cert);
  fs::remove(pki_.ca_key);
  EXPECT_NE(refusal().find(pki_.ca_key.string() + " is missing"), std::string::npos);
  EXPECT_EQ(bytes(pki_.ca_cert), ca);
  EXPECT_FALSE(fs::exists(pki_.ca_key));
}

TEST_F(pki_test, an_empty_or_foreign_ca_file_is_refused_naming_it) {
  std::string key = bytes(pki_.ca_key);
  std::string ca = bytes(pki_.ca_cert);
  std::ofstream(pki_.ca_cert, std::ios::trunc).close();
  EXPECT_NE(refusal().find(pki_.ca_cert.string()), std::string::npos);
  EXPECT_EQ(bytes(pki_.ca_key), key);
  // A key from another CA beside this certificate.
  std::ofstream(pki_.ca_cert, std::ios::binary) << ca;
  write_key(pki_.ca_key, generate_ec_key().get());
  EXPECT_NE(refusal().find("is not the key of " + pki_.ca_cert.string()), std::string::npos);
}

// A first start killed between committing ca.key and ca.crt is completed, not refused.
TEST_F(pki_test, an_interrupted_ca_creation_is_completed) {
  std::string ca = bytes(pki_.ca_cert);
  fs::rename(pki_.ca_cert, fs::path(pki_.ca_cert.string() + ".tmp"));
  ensure_dev_pki(dir_);
  EXPECT_EQ(bytes(pki_.ca_cert), ca);
}

// The server pair is derived from the CA: an empty one (killed during the first start) is issued again.
TEST_F(pki_test, an_empty_server_cert_is_issued_again_by_the_same_ca) {
  std::string ca = bytes(pki_.ca_cert), key = bytes(pki_.ca_key);
  std::ofstream(pki_.server_cert, std::ios::trunc).close();
  ensure_dev_pki(dir_);
  EXPECT_TRUE(issued_by(read_cert(pki_.server_cert).get(), read_cert(pki_.ca_cert).get()));
  EXPECT_EQ(X509_check_private_key(read_cert(pki_.server_cert).get(), read_key(pki_.server_key).get()), 1);
  EXPECT_EQ(bytes(pki_.ca_cert), ca);
  EXPECT_EQ(bytes(pki_.ca_key), key);
}

TEST_F(pki_test, refuse_keeps_an_existing_key) {
  std::string key = bytes(pki_.ca_key);
  EXPECT_THROW(write_key(pki_.ca_key, generate_ec_key().get(), existing::refuse), std::runtime_error);
  EXPECT_EQ(bytes(pki_.ca_key), key);
  EXPECT_FALSE(fs::exists(pki_.ca_key.string() + ".tmp"));
}

TEST_F(pki_test, client_certificates_are_written_whole_with_a_private_key) {
  issue_client_cert(pki_, "dev-1", dir_ / "out");
  EXPECT_EQ(mode_of(dir_ / "out" / "dev-1.key"), 0600u);
  auto cert = read_cert(dir_ / "out" / "dev-1.crt");
  EXPECT_TRUE(issued_by(cert.get(), read_cert(pki_.ca_cert).get()));
  EXPECT_EQ(X509_check_private_key(cert.get(), read_key(dir_ / "out" / "dev-1.key").get()), 1);
}

// `fleetcore device create` sends a CSR so that the thing name is the certificate's CN.
TEST_F(pki_test, a_csr_is_signed_with_its_common_name_and_key) {
  auto key = generate_ec_key();
  std::string error;
  auto cert = sign_csr(make_csr(key.get(), "dev-7"), read_cert(pki_.ca_cert).get(), read_key(pki_.ca_key).get(), 30,
                       error);
  ASSERT_TRUE(cert) << error;
  EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
  auto facts = facts_of(cert.get());
  EXPECT_NE(std::find(facts.variables.begin(), facts.variables.end(),
                      std::pair<std::string, std::string>("Subject.CommonName", "dev-7")),
            facts.variables.end());
}

}  // namespace
}  // namespace fleetcore::auth
