# Runs one libFuzzer target for SECONDS seconds on a fresh copy of its seed corpus.
# Called by CTest as: cmake -D FUZZER=... -D SEEDS=... -D WORK=... -D SECONDS=...
# [-D DICT=dictionary] -P run_fuzzer.cmake
# A crash, leak, timeout or sanitizer report makes the fuzzer exit non-zero, which fails
# the test; the input that caused it is written into WORK as crash-*, leak-* or timeout-*.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
file(GLOB seed_files ${SEEDS}/*)
file(COPY ${seed_files} DESTINATION ${WORK}/corpus)

set(dictionary_flag "")
if(DICT)
  set(dictionary_flag -dict=${DICT})
endif()

execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=5 -rss_limit_mb=2048
          ${dictionary_flag} -artifact_prefix=${WORK}/ ${WORK}/corpus
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${result}); the input it reports is in ${WORK}")
endif()
