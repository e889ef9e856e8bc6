# tally-recorder unit tests: tally_unit(test_x test_x.c LIBS tallyrec_lib)
# policy, port blocks and the SDP answer (no sockets, no threads)
tally_unit(test_srsanswer test_srsanswer.c LIBS tallyrec_lib)
# multipart bodies and RFC 7865 metadata: their sources compiled in directly
# (not tallyrec_lib), driven by tests/data/siprec
tally_unit(test_multipart test_multipart.c
  ${CMAKE_SOURCE_DIR}/src/recorder/multipart.c LIBS tallycore)
target_include_directories(test_multipart PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
tally_unit(test_rsmeta test_rsmeta.c ${CMAKE_SOURCE_DIR}/src/recorder/rsmeta.c
  ${CMAKE_SOURCE_DIR}/src/recorder/multipart.c LIBS tallycore PkgConfig::XML2)
target_include_directories(test_rsmeta PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
# RTP depacketizers: their sources compiled in directly; real-media fixtures
# in tests/data/rtp are decoded with libavcodec
set(DEPACK_SRCS ${CMAKE_SOURCE_DIR}/src/recorder/depack.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack_h264.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack_vp8.c)
tally_unit(test_depack test_depack.c ${DEPACK_SRCS} LIBS tallycore PkgConfig::AV)
target_include_directories(test_depack PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
# recordings catalog (SQLite) and the HTTP API + page: their sources compiled
# in directly (not tallyrec_lib)
tally_unit(test_catalog test_catalog.c ${CMAKE_SOURCE_DIR}/src/recorder/catalog.c
  LIBS tallycore PkgConfig::SQLITE m)
target_include_directories(test_catalog PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
tally_unit(test_recapi test_recapi.c ${CMAKE_SOURCE_DIR}/src/recorder/recapi.c
  ${CMAKE_SOURCE_DIR}/src/recorder/recdl.c ${CMAKE_SOURCE_DIR}/src/recorder/recweb.c
  ${CMAKE_SOURCE_DIR}/src/recorder/catalog.c
  LIBS tallycore PkgConfig::SQLITE m)
target_include_directories(test_recapi PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
