# ng-driven media tests (tests/integration/test_ng_*.py, helpers in tallytest.py).
# Each starts its own tally-media on loopback with free ports.
# TALLY_NG_TARGET=rtpengine runs the same scripts against /usr/bin/rtpengine.
tally_pytest(ng_relay     test_ng_relay.py     40)
tally_pytest(ng_replicate test_ng_replicate.py 40)
tally_pytest(ng_robust    test_ng_robust.py    60)
