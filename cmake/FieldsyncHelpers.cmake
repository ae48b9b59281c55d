# Shared build settings: warnings, sanitizers and a one-line test declaration.

add_library(fieldsync_warnings INTERFACE)
target_compile_options(fieldsync_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra>)
if(FIELDSYNC_SANITIZE)
  target_compile_options(fieldsync_warnings INTERFACE
    -fsanitize=${FIELDSYNC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(fieldsync_warnings INTERFACE -fsanitize=${FIELDSYNC_SANITIZE})
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    # A C program linking our C++ code (the C API test) needs clang's C++ UBSan runtime too,
    # and that runtime needs libstdc++ on the link line.
    target_link_options(fieldsync_warnings INTERFACE
      "$<$<LINK_LANGUAGE:C>:-fsanitize-link-c++-runtime;-lstdc++>")
  endif()
endif()
if(FIELDSYNC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FIELDSYNC_FUZZ needs clang: configure with CC=clang CXX=clang++")
  endif()
  # Coverage feedback for libFuzzer from all of our code, not only the fuzz targets.
  target_compile_options(fieldsync_warnings INTERFACE -fsanitize=fuzzer-no-link)
  target_link_options(fieldsync_warnings INTERFACE -fsanitize=fuzzer-no-link)
endif()
add_library(fieldsync::warnings ALIAS fieldsync_warnings)

# fieldsync_test(NAME SOURCES... LIBS... [LABEL label]) declares a GoogleTest binary and
# registers its tests, with a ctest label if given (tests/CMakeLists.txt: "db", "postgres").
function(fieldsync_test name)
  cmake_parse_arguments(ARG "" "LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} fieldsync::testing GTest::gmock GTest::gtest_main
                        fieldsync::warnings)
  set(props TIMEOUT 300)
  if(ARG_LABEL)
    list(APPEND props LABELS ${ARG_LABEL})
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()
