# The flags of the Bazel build (.bazelrc): C++20, -Wall -Wextra, and the
# sanitizer configurations. They apply to everything this project builds.
# Debug information comes with the build type (RelWithDebInfo, the
# default, and Debug), not with Release.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
add_compile_options(-Wall -Wextra)
# Source paths relative to the root in __FILE__ and std::source_location, as
# Bazel's: a dump says "spawned at tests/x.cc:12", not the build machine's path.
add_compile_options(-fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=)

# Sanitizers, with asserts on (as Bazel's configs, which build without
# NDEBUG) and the run-time options of .bazelrc for ctest.
if(FIBERLOOP_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -O1 -g -UNDEBUG)
  add_link_options(-fsanitize=address,undefined)
  set(FIBERLOOP_TEST_ENVIRONMENT
      "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
      "UBSAN_OPTIONS=print_stacktrace=1")
elseif(FIBERLOOP_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -O1 -g -UNDEBUG)
  add_link_options(-fsanitize=thread)
  set(FIBERLOOP_TEST_ENVIRONMENT "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
elseif(NOT FIBERLOOP_SANITIZE STREQUAL "")
  message(FATAL_ERROR "FIBERLOOP_SANITIZE=${FIBERLOOP_SANITIZE}: use address, thread or nothing")
endif()
