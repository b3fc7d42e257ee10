# The headers a consumer compiles against, made at configure time in
# ${PROJECT_BINARY_DIR}/include/fiberloop/: fiberloop.h, every header
# outside an internal/ directory, and the internal ones those include (the
# public templates need them). Their includes of each other are rewritten
# from "loop/loop.h" to "fiberloop/loop/loop.h", so that only include/ is on
# a consumer's include path and a consumer's own loop/ or sync/ headers
# cannot shadow fiberloop's. add_subdirectory users compile against this
# tree, and cmake --install copies it (cmake/install.cmake). Editing a
# header re-runs the configure step, which rewrites only what changed.
set(fiberloop_include_root ${PROJECT_BINARY_DIR}/include/fiberloop)
# (Build trees configured before this file existed hold a link to the
# source root here: it goes, so nothing below writes through it.)
if(IS_SYMLINK ${fiberloop_include_root})
  file(REMOVE ${fiberloop_include_root})
endif()
set(fiberloop_include_pattern "#include \"((fiber|io|loop|sync)/[^\"]+\\.h)\"")

file(GLOB_RECURSE fiberloop_all_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
     ${PROJECT_SOURCE_DIR}/fiber/*.h ${PROJECT_SOURCE_DIR}/io/*.h
     ${PROJECT_SOURCE_DIR}/loop/*.h ${PROJECT_SOURCE_DIR}/sync/*.h)
set(pending fiberloop.h)
foreach(header IN LISTS fiberloop_all_headers)
  if(NOT header MATCHES "/internal/")
    list(APPEND pending ${header})
  endif()
endforeach()

# The closure of `pending` under their includes of each other.
set(fiberloop_public_headers "")
while(pending)
  list(POP_FRONT pending header)
  if(header IN_LIST fiberloop_public_headers)
    continue()
  endif()
  list(APPEND fiberloop_public_headers ${header})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${header})
  file(STRINGS ${PROJECT_SOURCE_DIR}/${header} includes REGEX "${fiberloop_include_pattern}")
  foreach(line IN LISTS includes)
    string(REGEX MATCH "${fiberloop_include_pattern}" _ "${line}")
    list(APPEND pending ${CMAKE_MATCH_1})
  endforeach()
endwhile()

foreach(header IN LISTS fiberloop_public_headers)
  file(READ ${PROJECT_SOURCE_DIR}/${header} text)
  string(REGEX REPLACE "#include \"(fiber|io|loop|sync)/" "#include \"fiberloop/\\1/" text
         "${text}")
  file(WRITE ${PROJECT_BINARY_DIR}/header.tmp "${text}")
  get_filename_component(dir ${fiberloop_include_root}/${header} DIRECTORY)
  file(MAKE_DIRECTORY ${dir})
  # Only a header whose text changed gets a new time: the rest of a
  # consumer's build is not redone.
  file(COPY_FILE ${PROJECT_BINARY_DIR}/header.tmp ${fiberloop_include_root}/${header}
       ONLY_IF_DIFFERENT)
endforeach()
file(REMOVE ${PROJECT_BINARY_DIR}/header.tmp)

# A header removed from the source tree (or no longer public) goes too.
file(GLOB_RECURSE made RELATIVE ${fiberloop_include_root} ${fiberloop_include_root}/*)
foreach(header IN LISTS made)
  if(NOT header IN_LIST fiberloop_public_headers)
    file(REMOVE ${fiberloop_include_root}/${header})
  endif()
endforeach()
