# The flags of the Bazel build (.bazelrc): C++20, -Wall -Wextra, -g, and the
# sanitizer configurations. They apply to everything this project builds.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
add_compile_options(-Wall -Wextra -g)
# Source paths relative to the root in __FILE__ and std::source_location, as
# Bazel's: a dump says "spawned at tests/x.cc:12", not the build machine's path.
add_compile_options(-fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=)

if(FIBERLOOP_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer -O1)
  add_link_options(-fsanitize=address,undefined)
elseif(FIBERLOOP_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -O1)
  add_link_options(-fsanitize=thread)
elseif(NOT FIBERLOOP_SANITIZE STREQUAL "")
  message(FATAL_ERROR "FIBERLOOP_SANITIZE=${FIBERLOOP_SANITIZE}: use address, thread or nothing")
endif()
