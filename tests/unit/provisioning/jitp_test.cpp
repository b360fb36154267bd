// JITP's parameters from a certificate's subject.
#include "provisioning/jitp.hpp"

#include <gtest/gtest.h>

namespace fleetcore::provisioning {
namespace {

TEST(jitp_parameters, maps_the_documented_subject_fields_and_the_id) {
  auto p = jitp_parameters({{"Subject.CommonName", "dev42"},
                            {"Subject.Country", "US"},
                            {"Subject.State", "WA"},
                            {"Subject.SerialNumber", "SN-42"},
                            {"Subject.Organization", "acme"},
                            {"Subject.OrganizationalUnit", "lamps"},
                            {"Subject.DistinguishedNameQualifier", "q"},
                            {"Subject.Locality", "Seattle"},  // not a JITP parameter
                            {"Issuer.CommonName", "ca"},
                            {"SerialNumber", "0a1b"}},  // the certificate's serial, not the subject's
                           "abc");
  EXPECT_EQ(p, (std::map<std::string, std::string>{{"AWS::IoT::Certificate::CommonName", "dev42"},
                                                   {"AWS::IoT::Certificate::Country", "US"},
                                                   {"AWS::IoT::Certificate::StateName", "WA"},
                                                   {"AWS::IoT::Certificate::SerialNumber", "SN-42"},
                                                   {"AWS::IoT::Certificate::Organization", "acme"},
                                                   {"AWS::IoT::Certificate::OrganizationalUnit", "lamps"},
                                                   {"AWS::IoT::Certificate::DistinguishedNameQualifier", "q"},
                                                   {"AWS::IoT::Certificate::Id", "abc"}}));
}

TEST(jitp_parameters, a_missing_field_is_absent_not_empty) {
  auto p = jitp_parameters({{"Subject.CommonName", "dev"}}, "id");
  EXPECT_FALSE(p.contains("AWS::IoT::Certificate::Country"));
  EXPECT_EQ(p.size(), 2u);
}

}  // namespace
}  // namespace fleetcore::provisioning
