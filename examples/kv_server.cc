// A line-protocol key-value server: one command per line, read with a
// BufferedReader, a store shared by every loop behind a fiberloop Mutex.
//   ./bazelw run -c opt //examples:kv_server -- --port 7070 [--loops N]
//   printf 'SET a 1\nGET a\nDEL a\nGET a\nQUIT\n' | nc 127.0.0.1 7070
//
//   SET <key> <value>  -> OK          GET <key> -> VALUE <value> | NOTFOUND
//   DEL <key>          -> OK | NOTFOUND          QUIT -> BYE (and closes)
// A line longer than 4 KiB, or an unknown command, gets ERR and the
// connection goes on (the long line's bytes are skipped); a connection idle
// for 5 minutes is closed.
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "examples/flags.h"
#include "examples/serve.h"

namespace {

class Store {
 public:
  void set(std::string key, std::string value) {
    std::lock_guard lock(mutex_);
    map_[std::move(key)] = std::move(value);
  }
  std::optional<std::string> get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  bool erase(const std::string& key) {
    std::lock_guard lock(mutex_);
    return map_.erase(key) != 0;
  }

 private:
  fiberloop::Mutex mutex_;  // works across loops; uncontended, it costs a compare
  std::unordered_map<std::string, std::string> map_;
};

// The answer to one command line; `quit` set for QUIT.
std::string answer(Store& store, std::string_view line, bool& quit) {
  const auto word = [&line]() {
    const std::size_t start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::string_view();
    line.remove_prefix(start);
    const std::size_t end = line.find(' ');
    std::string_view w = line.substr(0, end);
    line.remove_prefix(end == std::string_view::npos ? line.size() : end);
    return w;
  };
  const std::string_view command = word();
  const std::string_view key = word();
  if (command == "QUIT") {
    quit = true;
    return "BYE\n";
  }
  if (command == "GET" && !key.empty()) {
    auto value = store.get(std::string(key));
    return value ? "VALUE " + *value + "\n" : "NOTFOUND\n";
  }
  if (command == "DEL" && !key.empty())
    return store.erase(std::string(key)) ? "OK\n" : "NOTFOUND\n";
  if (command == "SET" && !key.empty()) {
    const std::size_t start = line.find_first_not_of(' ');
    store.set(std::string(key),
              std::string(start == std::string_view::npos ? "" : line.substr(start)));
    return "OK\n";
  }
  return "ERR unknown command (SET k v, GET k, DEL k, QUIT)\n";
}

// Drops the bytes up to and including the next newline, however far it is.
void skip_line(fiberloop::BufferedReader& in) {
  for (;;) {
    try {
      (void)in.read_until("\n");
      return;
    } catch (const fiberloop::LimitOverrunError&) {
      char drop[4096];
      (void)in.read(drop);  // what is buffered, without a newline in it
    } catch (const fiberloop::IncompleteReadError&) {
      return;  // the client closed mid-line
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port", "--loops"});
  using namespace fiberloop;
  using namespace std::chrono_literals;
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 7070));
  Store store;
  return examples::serve(
      "kv_server", address,
      [&](TcpStream& conn) {
        BufferedReader in(conn, 4096);
        for (;;) {
          conn.set_read_deadline(Clock::now() + 5min);
          std::optional<std::string> line;
          try {
            line = in.read_line();
          } catch (const LimitOverrunError&) {
            conn.write_all("ERR line longer than 4096 bytes\n");
            skip_line(in);
            continue;
          } catch (const TimeoutError&) {
            conn.write_all("ERR idle for 5 minutes\n");
            return;
          }
          if (!line) return;  // the client closed
          bool quit = false;
          conn.write_all(answer(store, *line, quit));
          if (quit) return;
        }
      },
      examples::loops_flag(argc, argv));
}
