# Interop with real peers: Kamailio (rtpengine module) -> media daemon,
# sipp endpoints with audio+video. Needs kamailio, sip-tester, tshark/dumpcap
# and root (sipp pcap play uses raw sockets); exits 77 (skipped) without them.
# Validate the test itself against rtpengine:
#   TALLY_NG_TARGET=rtpengine python3 tests/integration/interop_kamailio.py
tally_pytest(interop_kamailio interop_kamailio.py 180)
set_tests_properties(interop_kamailio PROPERTIES SKIP_RETURN_CODE 77)
# Second variant: two baresip phones (PCMU + VP8 fakevideo, ctrl_tcp driven)
# through kamailio; checks the tones heard and the video frames seen.
tally_pytest(interop_kamailio_baresip interop_kamailio_baresip.py 120)
set_tests_properties(interop_kamailio_baresip PROPERTIES SKIP_RETURN_CODE 77)
