# The libraries: libfiberloop.a (fiberloop::fiberloop, the default: the
# switch path reads thread-locals, which a program's own code reaches
# cheapest) and libfiberloop.so (fiberloop::fiberloop_shared), both from
# the same objects.
include(GNUInstallDirs)

# What the headers ask of whoever compiles them, this build's targets and
# its consumers alike: C++20, the features left out (fiberloop.h and
# io/tls.h check FIBERLOOP_NO_TLS), the sanitizer the library was built
# with (fiber/internal/sanitizers.h stops a program that differs), the
# dependencies. <fiberloop/...> resolves through include/, in the build
# tree (cmake/headers.cmake) as in an install.
include(cmake/headers.cmake)
if(FIBERLOOP_SANITIZE STREQUAL "address")
  set(FIBERLOOP_LIBRARY_SANITIZE 1)
elseif(FIBERLOOP_SANITIZE STREQUAL "thread")
  set(FIBERLOOP_LIBRARY_SANITIZE 2)
else()
  set(FIBERLOOP_LIBRARY_SANITIZE 0)
endif()
function(fiberloop_usage target)
  target_include_directories(${target} PUBLIC
    "$<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>"
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_definitions(${target} PUBLIC FIBERLOOP_LIBRARY_SANITIZE=${FIBERLOOP_LIBRARY_SANITIZE})
  # The sanitizers' runtimes, for a consumer that links the static library
  # (which calls into them) with only -fsanitize=address: UBSan's is needed
  # too.
  if(FIBERLOOP_LIBRARY_SANITIZE EQUAL 1)
    target_link_options(${target} INTERFACE -fsanitize=address,undefined)
  elseif(FIBERLOOP_LIBRARY_SANITIZE EQUAL 2)
    target_link_options(${target} INTERFACE -fsanitize=thread)
  endif()
  # Boost.Context is the program's too (the inline switch path calls it).
  # OpenSSL and liburing are the library's own (no installed header includes
  # theirs): private, so a program linking the shared library is not linked
  # with them; the static library's consumers still link them (CMake passes
  # a static library's private dependencies on, link-only).
  target_link_libraries(${target} PUBLIC Boost::context Threads::Threads)
  if(FIBERLOOP_TLS_ENABLED)
    target_link_libraries(${target} PRIVATE OpenSSL::SSL OpenSSL::Crypto)
  else()
    target_compile_definitions(${target} PUBLIC FIBERLOOP_NO_TLS)
  endif()
  if(FIBERLOOP_IO_URING_ENABLED)
    target_link_libraries(${target} PRIVATE PkgConfig::fiberloop_liburing)
  endif()
endfunction()

# Every symbol visible, whatever a parent project that builds fiberloop
# with add_subdirectory sets for its own code (a hidden preset left the
# shared library exporting nothing of fiberloop's).
set_target_properties(fiberloop_objects PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_VISIBILITY_PRESET default VISIBILITY_INLINES_HIDDEN OFF)
fiberloop_usage(fiberloop_objects)
# The library's own sources name its headers from the source root.
target_include_directories(fiberloop_objects PRIVATE ${PROJECT_SOURCE_DIR})
if(NOT FIBERLOOP_IO_URING_ENABLED)
  target_compile_definitions(fiberloop_objects PRIVATE FIBERLOOP_NO_IO_URING)
endif()

foreach(kind static shared)
  string(TOUPPER ${kind} KIND)
  add_library(fiberloop_${kind} ${KIND} $<TARGET_OBJECTS:fiberloop_objects>)
  set_target_properties(fiberloop_${kind} PROPERTIES
    OUTPUT_NAME fiberloop
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  fiberloop_usage(fiberloop_${kind})
endforeach()
set_target_properties(fiberloop_static PROPERTIES EXPORT_NAME fiberloop)
set_target_properties(fiberloop_shared PROPERTIES EXPORT_NAME fiberloop_shared)
add_library(fiberloop::fiberloop ALIAS fiberloop_static)
add_library(fiberloop::fiberloop_shared ALIAS fiberloop_shared)
