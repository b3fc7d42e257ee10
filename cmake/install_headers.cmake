# Run by `cmake --install` (cmake/install.cmake): copies the public headers
# (internal ones included) to <prefix>/include/fiberloop/, their includes of
# each other rewritten from "loop/loop.h" to "fiberloop/loop/loop.h", so
# that only <prefix>/include is on a consumer's include path and a
# consumer's own loop/ or sync/ headers cannot shadow fiberloop's.
# In: FIBERLOOP_SOURCE_DIR, FIBERLOOP_INCLUDE_DESTINATION (relative to the prefix).
set(destination "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${FIBERLOOP_INCLUDE_DESTINATION}/fiberloop")
file(GLOB_RECURSE headers RELATIVE "${FIBERLOOP_SOURCE_DIR}"
     "${FIBERLOOP_SOURCE_DIR}/fiber/*.h" "${FIBERLOOP_SOURCE_DIR}/io/*.h"
     "${FIBERLOOP_SOURCE_DIR}/loop/*.h" "${FIBERLOOP_SOURCE_DIR}/sync/*.h")
foreach(header fiberloop.h ${headers})
  file(READ "${FIBERLOOP_SOURCE_DIR}/${header}" text)
  string(REGEX REPLACE "#include \"(fiber|io|loop|sync)/" "#include \"fiberloop/\\1/" text "${text}")
  message(STATUS "Installing: ${destination}/${header}")
  file(WRITE "${destination}/${header}" "${text}")
endforeach()
