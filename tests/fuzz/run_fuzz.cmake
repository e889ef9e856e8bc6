# run_fuzz.cmake: copy the kept corpus to WORK and fuzz for SECONDS there.
# cmake -DFUZZER=bin -DSEED=dir -DWORK=dir -DSECONDS=n -P run_fuzz.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
file(GLOB seeds ${SEED}/*)
file(COPY ${seeds} DESTINATION ${WORK})
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=5 -rss_limit_mb=1024
          -print_final_stats=1 -artifact_prefix=${WORK}/ ${WORK}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); crashing input in ${WORK}/")
endif()
