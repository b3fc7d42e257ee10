# cmake --install: the headers under include/fiberloop/ (the public ones
# and the internal ones they include, with their includes of each other
# rewritten: cmake/headers.cmake), both libraries, fiberloopConfig.cmake
# exporting fiberloop::fiberloop (static) and fiberloop::fiberloop_shared,
# and fiberloop.pc for pkg-config (the shared library).
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_BINARY_DIR}/include/fiberloop DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(TARGETS fiberloop_static fiberloop_shared EXPORT fiberloopTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/fiberloop)
install(EXPORT fiberloopTargets NAMESPACE fiberloop:: DESTINATION ${config_dir})

configure_package_config_file(cmake/fiberloopConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fiberloopConfig.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fiberloopConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fiberloopConfig.cmake
              ${PROJECT_BINARY_DIR}/fiberloopConfigVersion.cmake
        DESTINATION ${config_dir})

# pkg-config: Boost.Context is in Libs (the inline switch path calls it from
# the program's own code). OpenSSL and liburing, used only inside the
# library, are in Requires.private: their own flags for a static link
# (which pkg-config alone does not make of -lfiberloop: CMake's
# fiberloop::fiberloop is the static library).
set(pc_requires_private "")
set(pc_cflags " -DFIBERLOOP_LIBRARY_SANITIZE=${FIBERLOOP_LIBRARY_SANITIZE}")
set(pc_libs "")  # the sanitizers' runtimes, as the CMake targets add them
if(FIBERLOOP_LIBRARY_SANITIZE EQUAL 1)
  set(pc_libs " -fsanitize=address,undefined")
elseif(FIBERLOOP_LIBRARY_SANITIZE EQUAL 2)
  set(pc_libs " -fsanitize=thread")
endif()
if(FIBERLOOP_TLS_ENABLED)
  string(APPEND pc_requires_private " openssl")
else()
  string(APPEND pc_cflags " -DFIBERLOOP_NO_TLS")
endif()
if(FIBERLOOP_IO_URING_ENABLED)
  string(APPEND pc_requires_private " liburing")
endif()
# The prefix relative to the .pc file's directory: an install moved as a
# whole, or installed with --prefix, still finds itself. An absolute
# LIBDIR puts the .pc file where its place says nothing of the prefix: then
# the prefix is named, as the install makes it (--prefix included), by a
# second substitution at install time. Directories given as absolute paths
# stay as given.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(pc_prefix "@CMAKE_INSTALL_PREFIX@")
else()
  file(RELATIVE_PATH pc_prefix_from_pcfiledir
       "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" pc_prefix_from_pcfiledir "${pc_prefix_from_pcfiledir}")
  set(pc_prefix "\${pcfiledir}/${pc_prefix_from_pcfiledir}")
endif()
foreach(dir INCLUDEDIR LIBDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(pc_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(pc_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
configure_file(cmake/fiberloop.pc.in ${PROJECT_BINARY_DIR}/fiberloop.pc.install @ONLY)
install(CODE "configure_file(\"${PROJECT_BINARY_DIR}/fiberloop.pc.install\"
                             \"${PROJECT_BINARY_DIR}/fiberloop.pc\" @ONLY)")
install(FILES ${PROJECT_BINARY_DIR}/fiberloop.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
