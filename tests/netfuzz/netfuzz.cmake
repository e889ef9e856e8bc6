# Whole-daemon network fuzzing (tests/netfuzz/netfuzz.py): one CTest per
# daemon, label netfuzz, about TALLY_NETFUZZ_TIME seconds each. Only in the
# sanitizer build: without ASan/UBSan most of what it finds goes unseen.
# Included from tests/integration/CMakeLists.txt (TALLY_TEST_ENV gives the
# daemon paths). The seed comes from the clock and is printed; repeat a run
# with: python3 tests/netfuzz/netfuzz.py --target T --seed S --seconds N
# Longer runs: make netfuzz (NETFUZZ_SECS per daemon, default 600).
set(TALLY_NETFUZZ_TIME 45 CACHE STRING "seconds of network fuzzing per daemon in CTest")
if(TALLY_SANITIZE)
  foreach(target media sip recorder)
    add_test(NAME netfuzz_${target}
             COMMAND ${PYTHON3} ${CMAKE_SOURCE_DIR}/tests/netfuzz/netfuzz.py
                     --target ${target} --seconds ${TALLY_NETFUZZ_TIME}
                     --out ${CMAKE_BINARY_DIR}/netfuzz-out/${target})
    math(EXPR nf_timeout "${TALLY_NETFUZZ_TIME} + 120")
    set_tests_properties(netfuzz_${target} PROPERTIES LABELS netfuzz
      TIMEOUT ${nf_timeout} ENVIRONMENT "${TALLY_TEST_ENV}" RUN_SERIAL TRUE)
  endforeach()
endif()
