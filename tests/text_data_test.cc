// The calls that take data (Stream::write, UdpSocket::send_to and send,
// File::write_at) given text: a string literal goes without its terminating
// NUL, a mutable char array must say which bytes (a compile error), and
// std::string, std::string_view and std::vector<char> convert to the span. And empty buffers: a
// read or a write of nothing returns 0 at once, on an idle connection too.
#include <fcntl.h>

#include <string>
#include <string_view>
#include <vector>

#include "tests/loop_fixture.h"
#include "tests/temp_dir.h"
#include "tests/tls_fixture.h"

namespace fiberloop {
namespace {

using testing::any_port;
using testing::LoopTest;
using TextData = LoopTest;

// What the peer of `write` receives, until `write` closes its end.
std::string received_by_peer(void (*write)(Stream& out)) {
  auto listener = TcpListener::bind(any_port());
  auto writer = spawn([&] {
    auto conn = TcpStream::connect(listener.local_address());
    write(conn);
    conn.shutdown_write();
  });
  auto conn = listener.accept();
  std::string got;
  char buf[64];
  while (std::size_t n = conn.read(buf)) got.append(buf, n);
  writer.join();
  return got;
}

TEST_F(TextData, StreamWriteOfALiteralSendsNoNul) {
  run([] {
    EXPECT_EQ(received_by_peer([](Stream& out) { EXPECT_EQ(out.write("abc"), 3u); }), "abc");
    // A mutable buffer says which bytes (a bare char array does not
    // compile: tests/compile/write_of_a_char_buffer.cc).
    EXPECT_EQ(received_by_peer([](Stream& out) {
                char buf[4] = {'x', 'y', 'z', '\0'};
                EXPECT_EQ(out.write(std::span<const char>(buf, 4)), 4u);
                EXPECT_EQ(out.write(std::string_view(buf)), 3u);
              }),
              std::string("xyz\0xyz", 7));
    // A const array without a final NUL goes whole too.
    EXPECT_EQ(received_by_peer([](Stream& out) {
                static const char kNoNul[3] = {'1', '2', '3'};
                EXPECT_EQ(out.write(kNoNul), 3u);
              }),
              "123");
    EXPECT_EQ(received_by_peer([](Stream& out) {
                const std::string text = "str";
                EXPECT_EQ(out.write(text), 3u);
                EXPECT_EQ(out.write(std::string_view("sv")), 2u);
                EXPECT_EQ(out.write(std::vector<char>{'v'}), 1u);
              }),
              "strsvv");
  });
}

TEST_F(TextData, UdpSendOfALiteralSendsNoNul) {
  run([] {
    auto server = UdpSocket::bind(any_port());
    auto client = UdpSocket::bind(any_port());
    char buf[16];
    EXPECT_EQ(client.send_to("abc", server.local_address()), 3u);
    EXPECT_EQ(server.recv_from(buf).size, 3u);
    client.connect(server.local_address());
    EXPECT_EQ(client.send("de"), 2u);
    EXPECT_EQ(server.recv(buf), 2u);
    EXPECT_EQ(std::string_view(buf, 2), "de");
    char bytes[3] = {'f', 'g', '\0'};
    EXPECT_EQ(client.send(std::span<const char>(bytes, 3)), 3u);
    EXPECT_EQ(server.recv(buf), 3u);
  });
}

TEST_F(TextData, FileWriteAtOfALiteralWritesNoNul) {
  const std::string path = testing::temp_dir("text_data") + "/f";
  run([&] {
    File f = File::open(path, O_RDWR | O_CREAT | O_TRUNC);
    EXPECT_EQ(f.write_at("abc", 0), 3u);
    // A mutable char buffer says which bytes (the overload set once took
    // it for a C string and read past the end of one without a NUL).
    char buf[4] = {'w', 'x', 'y', 'z'};
    EXPECT_EQ(f.write_at(std::span<const char>(buf, 4), 3), 4u);
    EXPECT_EQ(f.write_at(std::string("S"), 7), 1u);
    EXPECT_EQ(f.write_at(std::string_view("V"), 8), 1u);
    EXPECT_EQ(read_file(path), "abcwxyzSV");
  });
}

// Both ends idle: a read that waited for data would never return.
void expect_empty_calls_return_at_once(Stream& a, Stream& b) {
  EXPECT_EQ(a.read(std::span<char>()), 0u);
  EXPECT_EQ(a.write(std::span<const char>()), 0u);
  EXPECT_EQ(a.write(""), 0u);
  // The stream still works afterwards, both ways.
  a.write_all("ok");
  char buf[2];
  b.read_exact(buf);
  EXPECT_EQ(std::string_view(buf, 2), "ok");
}

TEST_F(TextData, EmptyBuffersReturnZeroAtOnce) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    expect_empty_calls_return_at_once(client, server);
  });
}

using TlsTextData = testing::Tls;

TEST_F(TlsTextData, EmptyBuffersReturnZeroAtOnce) {
  run([] {
    auto [client, server] = connected();
    expect_empty_calls_return_at_once(client, server);
  });
}

}  // namespace
}  // namespace fiberloop
