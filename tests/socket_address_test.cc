// SocketAddress parsing and printing.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>

#include "io/socket_address.h"

namespace fiberloop {
namespace {

TEST(SocketAddressTest, ParsesIpv4AndIpv6) {
  auto a = SocketAddress::parse("127.0.0.1:8080");
  EXPECT_TRUE(a.is_ipv4());
  EXPECT_EQ(a.port(), 8080);
  EXPECT_EQ(a.to_string(), "127.0.0.1:8080");
  auto b = SocketAddress::parse("[::1]:80");
  EXPECT_TRUE(b.is_ipv6());
  EXPECT_EQ(b.port(), 80);
  EXPECT_EQ(b.to_string(), "[::1]:80");
  EXPECT_EQ(SocketAddress::parse("0.0.0.0:0").port(), 0);
  EXPECT_EQ(a, SocketAddress::parse("127.0.0.1:8080"));
}

TEST(SocketAddressTest, RejectsMalformedInputWithAClearMessage) {
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:8o",
        "::1:80", "[::1]", "[::1]80", "[127.0.0.1]:80", "[::1:80", "localhost:80", "999.1.1.1:1",
        "1.2.3.4:99999999999", "[fe80::1%]:80", "[fe80::1%no-such-if9]:80", "127.0.0.1%lo:80"}) {
    try {
      SocketAddress::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos)
          << e.what();
    }
  }
}

// A link-local address keeps its scope, by name or index, both ways (it
// was refused as "not numeric", and printed without it).
TEST(SocketAddressTest, Ipv6ScopesParseAndPrint) {
  const auto a = SocketAddress::parse("[fe80::1%lo]:80");
  EXPECT_EQ(a.to_string(), "[fe80::1%lo]:80");
  EXPECT_EQ(SocketAddress::parse("[fe80::1%1]:80"), a);  // lo is interface 1
  EXPECT_EQ(SocketAddress::from_ip("fe80::1%lo", 80), a);
  EXPECT_NE(SocketAddress::parse("[fe80::1]:80"), a);
  // The longest address form still fits with a scope after it.
  const auto longest = SocketAddress::parse("[fe80:0000:0000:0000:0000:ffff:255.255.255.255%lo]:1");
  EXPECT_EQ(longest.to_string(), "[fe80::ffff:ffff:ffff%lo]:1");
}

// Bytes a C string would cut short are refused, not silently dropped.
TEST(SocketAddressTest, AnEmbeddedNulIsRefused) {
  using namespace std::string_view_literals;
  EXPECT_THROW(SocketAddress::parse("127.0.0.1\0junk:80"sv), std::invalid_argument);
  EXPECT_THROW(SocketAddress::unix_path("/tmp/a\0b"sv), std::invalid_argument);
}

TEST(SocketAddressTest, UnixPaths) {
  EXPECT_EQ(SocketAddress::unix_path("/tmp/x.sock").to_string(), "/tmp/x.sock");
  EXPECT_EQ(SocketAddress::unix_path("@abstract").to_string(), "@abstract");
  EXPECT_THROW(SocketAddress::unix_path(""), std::invalid_argument);
  EXPECT_THROW(SocketAddress::unix_path(std::string(200, 'x')), std::invalid_argument);
  // sun_path holds 108 bytes: a path 107 and its NUL, an abstract name 107
  // after the '@' (no NUL needed; it was refused).
  EXPECT_NO_THROW(SocketAddress::unix_path("/" + std::string(106, 'p')));
  EXPECT_THROW(SocketAddress::unix_path("/" + std::string(107, 'p')), std::invalid_argument);
  const std::string longest = "@" + std::string(107, 'a');
  EXPECT_EQ(SocketAddress::unix_path(longest).to_string(), longest);
  EXPECT_THROW(SocketAddress::unix_path("@" + std::string(108, 'a')), std::invalid_argument);
}

}  // namespace
}  // namespace fiberloop
