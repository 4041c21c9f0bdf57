# The version and git commit go into `hearth --version`, `hearth bench --json` and the server's
# headers. The commit is looked up at every build, not only when CMake configures, so a binary
# names the commit it was built from (cmake/WriteVersion.cmake). Targets that include
# base/version.h depend on hearth_version.
set(_hearth_version_header "${CMAKE_BINARY_DIR}/generated/base/version.h")
set(_hearth_version_args -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DOUTPUT=${_hearth_version_header}
    -DVERSION=${PROJECT_VERSION} -P ${CMAKE_SOURCE_DIR}/cmake/WriteVersion.cmake)
execute_process(COMMAND ${CMAKE_COMMAND} ${_hearth_version_args})  # there before the first build
add_custom_target(hearth_version COMMAND ${CMAKE_COMMAND} ${_hearth_version_args}
                  BYPRODUCTS ${_hearth_version_header} VERBATIM)
