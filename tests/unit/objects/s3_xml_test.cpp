#include "objects/s3_xml.hpp"

#include <gtest/gtest.h>

namespace fleetcore::objects {
namespace {

// As botocore sends it (ETags quoted, the namespace on the root), and as curl users write it.
TEST(S3Xml, CompleteMultipartUploadListsItsParts) {
  auto parts = parse_complete_multipart_upload(
      R"(<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"b12527ddb6235e2a80196a18d82f1db3"</ETag><PartNumber>1</PartNumber></Part>)"
      "\n  <Part><PartNumber> 3 </PartNumber><ETag>&quot;aa&quot;</ETag></Part></CompleteMultipartUpload>");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].number, 1);
  EXPECT_EQ((*parts)[0].etag, "b12527ddb6235e2a80196a18d82f1db3");
  EXPECT_EQ((*parts)[1].number, 3);
  EXPECT_EQ((*parts)[1].etag, "aa");
}

TEST(S3Xml, MalformedCompleteMultipartUploadIsRefused) {
  for (const char* bad : {"", "<CompleteMultipartUpload/>", "<CompleteMultipartUpload><Part></Part></CompleteMultipartUpload>",
                          "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
                          "<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
                          "<CompleteMultipartUpload><Part><PartNumber>1x</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
                          "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
                          "<Other><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Other>",
                          "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part>",
                          "<!DOCTYPE x [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><CompleteMultipartUpload>&b;</CompleteMultipartUpload>"})
    EXPECT_FALSE(parse_complete_multipart_upload(bad)) << bad;
}

TEST(S3Xml, LocationConstraint) {
  EXPECT_EQ(parse_location_constraint(""), "");
  EXPECT_EQ(parse_location_constraint(
                R"(<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-central-1</LocationConstraint></CreateBucketConfiguration>)"),
            "eu-central-1");
  EXPECT_EQ(parse_location_constraint("<CreateBucketConfiguration/>"), "");
  EXPECT_FALSE(parse_location_constraint("<CreateBucketConfiguration>"));
}

}  // namespace
}  // namespace fleetcore::objects
