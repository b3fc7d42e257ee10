# What fiberloop needs from the system, each from its Debian package:
# Threads, Boost.Context (required), OpenSSL (TLS) and liburing (io_uring)
# when found or asked for.
find_package(Threads REQUIRED)

find_package(boost_context CONFIG QUIET)
if(NOT boost_context_FOUND)
  message(FATAL_ERROR
    "fiberloop needs Boost.Context (its fibers switch with it), and CMake did not find it. "
    "On Debian or Ubuntu: apt-get install libboost-context-dev")
endif()

# AUTO: on when found; ON (or YES, TRUE, 1): an error when not found; OFF
# (or NO, FALSE, 0): not built. Anything else is an error.
function(fiberloop_optional name option found hint)
  string(TOUPPER "${${option}}" value)
  if(value MATCHES "^(ON|YES|TRUE|Y|1)$")
    set(value ON)
  elseif(value MATCHES "^(OFF|NO|FALSE|N|0)$")
    set(value OFF)
  elseif(NOT value STREQUAL "AUTO")
    message(FATAL_ERROR "${option}=${${option}}: use AUTO, ON or OFF")
  endif()
  if(value STREQUAL "ON" AND NOT ${found})
    message(FATAL_ERROR "${option}=ON, but ${name} was not found. ${hint}")
  endif()
  if(${found} AND NOT value STREQUAL "OFF")
    set(${option}_ENABLED TRUE PARENT_SCOPE)
    message(STATUS "fiberloop: ${name}: on")
  elseif(${found})
    set(${option}_ENABLED FALSE PARENT_SCOPE)
    message(STATUS "fiberloop: ${name}: off (${option}=OFF)")
  else()
    set(${option}_ENABLED FALSE PARENT_SCOPE)
    message(STATUS "fiberloop: ${name}: off, not found (${hint})")
  endif()
endfunction()

find_package(OpenSSL 3 QUIET)
fiberloop_optional("TLS (OpenSSL 3)" FIBERLOOP_TLS OpenSSL_FOUND
                   "On Debian: apt-get install libssl-dev")

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(fiberloop_liburing QUIET IMPORTED_TARGET liburing)
endif()
fiberloop_optional("the io_uring backend (liburing)" FIBERLOOP_IO_URING fiberloop_liburing_FOUND
                   "On Debian: apt-get install liburing-dev pkg-config")

# GoogleTest for the tests (the tutorial's test is in examples/).
if(FIBERLOOP_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    message(FATAL_ERROR "The tests need GoogleTest: apt-get install libgtest-dev, or configure "
                        "with -DFIBERLOOP_TESTS=OFF (the library alone needs only Boost.Context)")
  endif()
endif()
