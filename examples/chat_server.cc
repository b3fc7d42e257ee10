// A chat server: each line a client sends goes to every other client.
//   ./bazelw run -c opt //examples:chat_server -- --port 7001
//   (then: nc 127.0.0.1 7001, from several terminals)
// Each client has a writer fiber draining a bounded queue, so one slow
// client never stalls the others: when its queue is full, it is dropped.
#include <list>
#include <string>

#include "examples/flags.h"
#include "examples/serve.h"

namespace {

struct Client {
  explicit Client(fiberloop::TcpStream& c) : conn(&c) {}
  fiberloop::TcpStream* conn;
  fiberloop::Channel<std::string> outbox{256};
};

}  // namespace

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port"});
  using namespace fiberloop;
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 7001));
  std::list<Client> clients;  // only touched on the loop thread
  return examples::serve(
      "chat_server", address,
      [&](TcpStream& conn) {
        Client& me = clients.emplace_back(conn);
        const auto self = std::prev(clients.end());
        auto writer = spawn([&] {
          while (auto line = me.outbox.recv()) conn.write_all(*line);
        });
        struct Leave {  // however this connection ends
          std::list<Client>& clients;
          std::list<Client>::iterator self;
          Task<void>& writer;
          ~Leave() {
            self->outbox.close();
            writer.cancel();
            try {
              writer.join();
            } catch (...) {
            }
            clients.erase(self);
          }
        } leave{clients, self, writer};

        const std::string name = conn.peer_address().to_string();
        std::string pending;
        char buf[4096];
        while (std::size_t n = conn.read(buf)) {
          pending.append(buf, n);
          for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;
               pending.erase(0, nl + 1)) {
            std::string line = name + ": " + pending.substr(0, nl + 1);
            for (Client& other : clients) {
              if (&other == &me) continue;
              std::string copy = line;
              if (!other.outbox.try_send(copy)) other.conn->close();  // too slow: dropped
            }
          }
          if (pending.size() > 65536) return;  // a "line" that never ends
        }
      },
      /*loops=*/1);  // one loop: the room's members are plain data of that loop;
}
