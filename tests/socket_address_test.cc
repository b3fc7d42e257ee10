// SocketAddress parsing and printing.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

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
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:8o", "::1:80", "[::1]", "[::1]80", "[127.0.0.1]:80", "[::1:80",
                          "localhost:80", "999.1.1.1:1", "1.2.3.4:99999999999"}) {
    try {
      SocketAddress::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos)
          << e.what();
    }
  }
}

TEST(SocketAddressTest, UnixPaths) {
  EXPECT_EQ(SocketAddress::unix_path("/tmp/x.sock").to_string(), "/tmp/x.sock");
  EXPECT_EQ(SocketAddress::unix_path("@abstract").to_string(), "@abstract");
  EXPECT_THROW(SocketAddress::unix_path(""), std::invalid_argument);
  EXPECT_THROW(SocketAddress::unix_path(std::string(200, 'x')), std::invalid_argument);
}

}  // namespace
}  // namespace fiberloop
