# Shared build settings: warnings, sanitizers and a one-line test declaration.

add_library(fieldsync_warnings INTERFACE)
target_compile_options(fieldsync_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra>)
if(FIELDSYNC_SANITIZE)
  target_compile_options(fieldsync_warnings INTERFACE
    -fsanitize=${FIELDSYNC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(fieldsync_warnings INTERFACE -fsanitize=${FIELDSYNC_SANITIZE})
endif()
add_library(fieldsync::warnings ALIAS fieldsync_warnings)

# fieldsync_test(NAME SOURCES... LIBS...) declares a GoogleTest binary and registers its tests.
function(fieldsync_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} fieldsync::testing GTest::gmock GTest::gtest_main
                        fieldsync::warnings)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
endfunction()
