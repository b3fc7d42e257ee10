// The HTTP example's request parser: keep-alive, pipelining, malformed input.
#include <gtest/gtest.h>

#include <string>

#include "examples/http_parser.h"

namespace fiberloop::examples {
namespace {

using Status = HttpParse::Status;

TEST(HttpParser, ParsesARequest) {
  const std::string in = "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n";
  const HttpParse p = parse_request(in);
  ASSERT_EQ(p.status, Status::kComplete);
  EXPECT_EQ(p.consumed, in.size());
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.target, "/hello");
  EXPECT_EQ(p.request.version, "HTTP/1.1");
  EXPECT_TRUE(p.request.keep_alive);
}

TEST(HttpParser, ConnectionSemantics) {
  EXPECT_FALSE(parse_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").request.keep_alive);
  EXPECT_FALSE(parse_request("GET / HTTP/1.0\r\n\r\n").request.keep_alive);
  EXPECT_TRUE(parse_request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").request.keep_alive);
}

TEST(HttpParser, IncompleteUntilTheHeadAndBodyAreIn) {
  const std::string full = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  for (std::size_t cut = 0; cut < full.size(); ++cut) {
    EXPECT_EQ(parse_request(std::string_view(full).substr(0, cut)).status, Status::kIncomplete)
        << "at " << cut;
  }
  const HttpParse p = parse_request(full);
  ASSERT_EQ(p.status, Status::kComplete);
  EXPECT_EQ(p.consumed, full.size());
  EXPECT_EQ(p.request.content_length, 5u);
  // The head alone: incomplete, but the request is known.
  const HttpParse head = parse_request(std::string_view(full).substr(0, full.size() - 5));
  EXPECT_EQ(head.status, Status::kIncomplete);
  EXPECT_EQ(head.consumed, 0u);
  EXPECT_EQ(head.request.method, "POST");
  EXPECT_EQ(head.request.content_length, 5u);
}

TEST(HttpParser, PipelinedRequestsAreTakenOneAtATime) {
  const std::string two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  const HttpParse first = parse_request(two);
  ASSERT_EQ(first.status, Status::kComplete);
  EXPECT_EQ(first.request.target, "/a");
  const HttpParse second = parse_request(std::string_view(two).substr(first.consumed));
  ASSERT_EQ(second.status, Status::kComplete);
  EXPECT_EQ(second.request.target, "/b");
}

TEST(HttpParser, MalformedInputIsAnErrorWithAReason) {
  for (const char* bad : {"GET\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
                          "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"}) {
    const HttpParse p = parse_request(bad);
    EXPECT_EQ(p.status, Status::kError) << bad;
    EXPECT_NE(p.error, nullptr) << bad;
  }
}

TEST(HttpParser, AnEndlessHeadIsRefusedNotBuffered) {
  const std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(kMaxRequestHead, 'a');
  EXPECT_EQ(parse_request(endless).status, Status::kError);
}

}  // namespace
}  // namespace fiberloop::examples
