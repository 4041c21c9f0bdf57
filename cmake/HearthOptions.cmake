# Compiler flags shared by every hearth target.
add_library(hearth_flags INTERFACE)
target_compile_options(hearth_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wno-missing-field-initializers)
if(HEARTH_WERROR)
  target_compile_options(hearth_flags INTERFACE -Werror)
endif()
if(HEARTH_SANITIZE)
  # GCC's -Wmaybe-uninitialized reports false positives inside libstdc++ (std::regex,
  # std::function) once ASan instrumentation changes inlining; the Release build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(hearth_flags INTERFACE -Wno-maybe-uninitialized)
  endif()
  set(_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_compile_options(${_san})
  add_link_options(${_san})
endif()
if(HEARTH_FUZZ)
  # Every library is instrumented for coverage; the fuzz targets add the libFuzzer main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# hearth_add_test(NAME <name> SOURCES <files...> LIBS <libs...>)
# One GoogleTest executable, registered with ctest. Tests find the shared fixtures through
# HEARTH_SHARED_DIR and the built CLI through HEARTH_BINARY (when the cli layer exists).
function(hearth_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main hearth_flags)
  target_compile_definitions(${T_NAME} PRIVATE
    HEARTH_SHARED_DIR="${HEARTH_SHARED_DIR}"
    HEARTH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    HEARTH_BINARY="$<TARGET_FILE_DIR:hearth>/hearth")
  # The edit journal's per-user key (and any user config) goes to the build tree, never to the
  # developer's own ~/.config; tests that check the key set their own temp dirs.
  gtest_discover_tests(${T_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}"
      ENVIRONMENT "XDG_CONFIG_HOME=${CMAKE_BINARY_DIR}/test-config")
endfunction()
