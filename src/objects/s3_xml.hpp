#pragma once
// The XML request bodies of the S3 subset, read with expat: CompleteMultipartUpload's part list and
// CreateBucketConfiguration's location constraint, VersioningConfiguration's status. Outside input: a body that is not well-formed XML
// of the expected shape is refused (MalformedXML), never guessed at.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::objects {

struct completed_part {
  int number = 0;
  std::string etag;  // without its quotes
};

/// The parts CompleteMultipartUpload lists, in the order listed; nullopt if the body is not well-formed
/// XML, lists no part, or has a Part without a PartNumber (1..10000) or an ETag.
std::optional<std::vector<completed_part>> parse_complete_multipart_upload(std::string_view xml);

/// CreateBucketConfiguration's LocationConstraint: empty when the body is empty or names none;
/// nullopt if it is not well-formed XML.
std::optional<std::string> parse_location_constraint(std::string_view xml);

/// PutBucketVersioning's VersioningConfiguration Status ("Enabled", "Suspended", or empty when the
/// body names none); nullopt if it is not well-formed XML of that shape.
std::optional<std::string> parse_versioning_status(std::string_view xml);

}  // namespace fleetcore::objects
