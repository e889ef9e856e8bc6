# tally-recorder unit tests: tally_unit(test_x test_x.c LIBS tallyrec_lib)
# policy, port blocks and the SDP answer (no sockets, no threads)
tally_unit(test_srsanswer test_srsanswer.c LIBS tallyrec_lib)
# multipart bodies (libtallysiprec, read and written) and RFC 7865 metadata
# (rsmeta.c compiled in directly, not tallyrec_lib), driven by tests/data/siprec
tally_unit(test_multipart test_multipart.c LIBS tallysiprec)
tally_unit(test_rsmeta test_rsmeta.c ${CMAKE_SOURCE_DIR}/src/recorder/rsmeta.c
  LIBS tallysiprec PkgConfig::XML2)
target_include_directories(test_rsmeta PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
# RTP depacketizers: their sources compiled in directly; real-media fixtures
# in tests/data/rtp are decoded with libavcodec
set(DEPACK_SRCS ${CMAKE_SOURCE_DIR}/src/recorder/depack.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack_h264.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack_vp8.c)
tally_unit(test_depack test_depack.c ${DEPACK_SRCS} LIBS tallycore)
target_include_directories(test_depack PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
tally_unit(test_depack_media test_depack_media.c ${DEPACK_SRCS} LIBS tallycore PkgConfig::AV)
target_include_directories(test_depack_media PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
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
# session.json: sessfile.c compiled in directly (not tallyrec_lib)
tally_unit(test_sessfile test_sessfile.c ${CMAKE_SOURCE_DIR}/src/recorder/sessfile.c
  LIBS tallycore m)
target_include_directories(test_sessfile PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
# the finalizer (session folder -> mp4/webm/mkv/wav): its sources and the
# depacketizers compiled in directly; media from tests/tools/mkrtp.py,
# files checked with ffprobe/ffmpeg
set(FINALIZE_SRCS ${CMAKE_SOURCE_DIR}/src/recorder/finalize.c
  ${CMAKE_SOURCE_DIR}/src/recorder/parties.c
  ${CMAKE_SOURCE_DIR}/src/recorder/outputs.c
  ${CMAKE_SOURCE_DIR}/src/recorder/timeline.c
  ${CMAKE_SOURCE_DIR}/src/recorder/avsync.c
  ${CMAKE_SOURCE_DIR}/src/recorder/frames.c
  ${CMAKE_SOURCE_DIR}/src/recorder/audtrack.c
  ${CMAKE_SOURCE_DIR}/src/recorder/vidtrack.c
  ${CMAKE_SOURCE_DIR}/src/recorder/avout.c
  ${CMAKE_SOURCE_DIR}/src/recorder/wavout.c
  ${CMAKE_SOURCE_DIR}/src/recorder/pcapread.c
  ${CMAKE_SOURCE_DIR}/src/recorder/sessfile.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack_h264.c
  ${CMAKE_SOURCE_DIR}/src/recorder/depack_vp8.c)
tally_unit(test_finalize test_finalize.c ${FINALIZE_SRCS}
  LIBS tallycore PkgConfig::AV m)
target_include_directories(test_finalize PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
target_compile_definitions(test_finalize PRIVATE
  TALLY_MKRTP="${CMAKE_SOURCE_DIR}/tests/tools/mkrtp.py")
set_tests_properties(test_finalize PROPERTIES TIMEOUT 120)
# the capture reader: pcaps built byte by byte
tally_unit(test_pcapread test_pcapread.c ${CMAKE_SOURCE_DIR}/src/recorder/pcapread.c
  LIBS tallycore)
target_include_directories(test_pcapread PRIVATE ${CMAKE_SOURCE_DIR}/src/recorder)
