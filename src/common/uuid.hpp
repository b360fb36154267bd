#pragma once
// Random version 4 UUIDs, as AWS names things, certificates' ACM ids, signing jobs and rule
// destinations. Header-only over OpenSSL's RAND_bytes: a module that includes it links OpenSSL::Crypto.
#include <openssl/rand.h>

#include <string>

namespace fleetcore::common {

inline std::string random_uuid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += digits[b[i] >> 4];
    s += digits[b[i] & 15];
  }
  return s;
}

}  // namespace fleetcore::common
