tally_pytest(sip_baresip sip_baresip.py 180)
# client API: HTTP/JSON + WebSocket events + tallyctl against the real
# tally-sip, tally-media and sipp; fails (never skips) when a binary is missing
tally_pytest(api_events api_events.py 120)
# tally-sip call flows with sipp endpoints (tests/data/sip/*.xml): basic
# audio+video call with media through tally-media, callee BYE, busy, CANCEL,
# no-answer timeout, hold/resume re-INVITEs, early media, 404, OPTIONS.
# Validate the harness against Kamailio + rtpengine:
#   TALLY_SIP_TARGET=kamailio python3 tests/integration/sip_callflows.py
tally_pytest(sip_callflows sip_callflows.py 240)
set_tests_properties(sip_callflows PROPERTIES SKIP_RETURN_CODE 77)
# RFC 4475 torture messages (tests/data/sip/rfc4475, byte-exact) over UDP and
# TCP; tally-sip must answer as index.tsv says and survive every one.
tally_pytest(sip_torture sip_torture.py 120)
set_tests_properties(sip_torture PROPERTIES SKIP_RETURN_CODE 77)
tally_pytest(sip_flood sip_flood.py 90)
# issue 10: the tally-sip defects found by fuzzing the daemon over the
# network, each driven with its trigger (late answer after the call ended,
# shutdown with live calls, Request-URI without a user, WebSocket length
# wrap, out-of-range status codes); under ASan/UBSan in `make asan`
tally_pytest(sip_netfuzz_regress sip_netfuzz_regress.py 90)
# issue 11, first slice: tally-sip as the SIPREC client (SRC) driven from
# the HTTP API, per-medium recording events, recorder failover, against real
# tally-media and tally-recorders (audio+video, audio-only policy), python
# UAs with RTP both ways, a python SRS that ends the session itself
tally_pytest(sip_record sip_record.py 180)
# issue 11: tallyctl as the recordings client of tally-sip (record start /
# pause / resume / media / stop, recordings --active, readable `tallyctl
# events` lines, API errors as exit 1, usage errors as exit 2) against the
# real tally-sip, tally-media and two tally-recorders (one audio-only)
tally_pytest(ctl_record ctl_record.py 120)
# issue 11, second slice: changes of a running recording (pause/resume,
# video added and dropped in the same SIPREC session) against the real
# tally-media and tally-recorder; the pause is silence of its length
tally_pytest(sip_record2 sip_record2.py 120)
