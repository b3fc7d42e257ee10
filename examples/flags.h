// Command-line flags for the examples: --port N, --host A and --loops N.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

namespace fiberloop::examples {

// Exits, with a usage line, on --help or on anything but the `known` flags
// each followed by its value: a mistyped flag would otherwise pass unseen.
inline void check_flags(int argc, char** argv, std::initializer_list<const char*> known) {
  for (int i = 1; i < argc; i += 2) {
    bool ok = false;
    for (const char* k : known) ok = ok || std::strcmp(argv[i], k) == 0;
    if (ok && i + 1 < argc) continue;
    const bool help = std::strcmp(argv[i], "--help") == 0;
    if (!help) {
      std::fprintf(stderr, ok ? "%s needs a value\n" : "unknown flag '%s'\n", argv[i]);
    }
    std::fprintf(help ? stdout : stderr, "usage: %s", argv[0]);
    for (const char* k : known) std::fprintf(help ? stdout : stderr, " [%s VALUE]", k);
    std::fprintf(help ? stdout : stderr, "\n");
    std::exit(help ? 0 : 2);
  }
}

// The value after `name` in argv, or `fallback`.
inline std::string flag(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

inline std::uint16_t port_flag(int argc, char** argv, std::uint16_t fallback) {
  const std::string v = flag(argc, argv, "--port", std::to_string(fallback).c_str());
  char* end = nullptr;
  const long port = std::strtol(v.c_str(), &end, 10);
  if (*end != '\0' || port < 0 || port > 65535) {
    std::fprintf(stderr, "--port: '%s' is not a port number (0-65535)\n", v.c_str());
    std::exit(2);
  }
  return static_cast<std::uint16_t>(port);
}

// --loops N: how many loops serve (0, the default: one per CPU of the
// affinity mask).
inline std::size_t loops_flag(int argc, char** argv) {
  const std::string v = flag(argc, argv, "--loops", "0");
  char* end = nullptr;
  const long loops = std::strtol(v.c_str(), &end, 10);
  if (*end != '\0' || loops < 0 || loops > 4096) {
    std::fprintf(stderr, "--loops: '%s' is not a number of loops (0-4096; 0: one per CPU)\n",
                 v.c_str());
    std::exit(2);
  }
  return static_cast<std::size_t>(loops);
}

}  // namespace fiberloop::examples
