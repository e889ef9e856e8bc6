# tally-sip unit tests: tally_unit(test_x test_x.c LIBS tallysip_lib)
tally_unit(test_ngc test_ngc.c LIBS tallysip_lib)
set_tests_properties(test_ngc PROPERTIES LABELS "unit")
add_dependencies(test_ngc tally-media)   # test_ngc runs the real daemon
tally_unit(test_routes test_routes.c LIBS tallysip_lib)
tally_unit(test_registrar test_registrar.c LIBS tallysip_lib)
# client API (api.c, events.c, calljson.c) against a test-only call list,
# so it does not need the B2BUA to link
tally_unit(test_api test_api.c ${CMAKE_SOURCE_DIR}/src/sip/api.c
  ${CMAKE_SOURCE_DIR}/src/sip/events.c ${CMAKE_SOURCE_DIR}/src/sip/calljson.c
  ${CMAKE_SOURCE_DIR}/src/sip/wsguard.c
  LIBS tallycore)
target_include_directories(test_api PRIVATE ${CMAKE_SOURCE_DIR}/src/sip)
# the timer queue tally-sip puts in place of libre's (includes tmrq.c)
tally_unit(test_tmrq test_tmrq.c LIBS tallycore)
tally_unit(test_session_expires test_session_expires.c LIBS tallysip_lib)
# the static record policy (config key record: pattern, media, mode)
tally_unit(test_recpolicy test_recpolicy.c LIBS tallysip_lib)
