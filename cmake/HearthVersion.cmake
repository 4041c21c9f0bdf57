# The git commit goes into `hearth --version`; a tarball without .git says "unknown".
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
                OUTPUT_VARIABLE HEARTH_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE _git_rc)
if(NOT _git_rc EQUAL 0 OR HEARTH_GIT_COMMIT STREQUAL "")
  set(HEARTH_GIT_COMMIT "unknown")
endif()
execute_process(COMMAND git status --porcelain --untracked-files=no
                WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
                OUTPUT_VARIABLE _git_dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT _git_dirty STREQUAL "")
  set(HEARTH_GIT_COMMIT "${HEARTH_GIT_COMMIT}-dirty")
endif()
configure_file("${CMAKE_SOURCE_DIR}/src/base/version.h.in"
               "${CMAKE_BINARY_DIR}/generated/base/version.h" @ONLY)
