# Writes generated/base/version.h from the current git commit (cmake -P, run at every build by
# the hearth_version target). configure_file leaves the file untouched when the text is the same,
# so nothing recompiles unless the commit (or its dirty mark) changed.
#   -DSOURCE_DIR=<repo> -DOUTPUT=<header> -DVERSION=<project version>
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY "${SOURCE_DIR}"
                OUTPUT_VARIABLE HEARTH_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE _git_rc)
if(NOT _git_rc EQUAL 0 OR HEARTH_GIT_COMMIT STREQUAL "")
  set(HEARTH_GIT_COMMIT "unknown")  # a tarball without .git
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no
                  WORKING_DIRECTORY "${SOURCE_DIR}"
                  OUTPUT_VARIABLE _git_dirty OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT _git_dirty STREQUAL "")
    set(HEARTH_GIT_COMMIT "${HEARTH_GIT_COMMIT}-dirty")
  endif()
endif()
set(PROJECT_VERSION "${VERSION}")
configure_file("${SOURCE_DIR}/src/base/version.h.in" "${OUTPUT}" @ONLY)
