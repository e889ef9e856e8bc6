# ng-driven media tests (tests/integration/test_ng_*.py, helpers in tallytest.py).
# Each starts its own tally-media on loopback with free ports.
# TALLY_NG_TARGET=rtpengine runs the same scripts against /usr/bin/rtpengine.
tally_pytest(ng_relay     test_ng_relay.py     40)
tally_pytest(ng_replicate test_ng_replicate.py 40)
tally_pytest(ng_robust    test_ng_robust.py    60)
# who is in dialogue with whom under any tags (netfuzz findings 1, 1b, 7)
tally_pytest(ng_pairing   test_ng_pairing.py   120)

# The same three with the io_uring packet path (--io-uring=yes).
foreach(t relay replicate robust)
  set(_timeout 40)
  if(t STREQUAL "robust")
    set(_timeout 60)
  endif()
  tally_pytest(ng_${t}_uring test_ng_${t}.py ${_timeout})
  set_property(TEST ng_${t}_uring APPEND PROPERTY ENVIRONMENT
    "TALLY_MEDIA_ARGS=--io-uring=yes")
endforeach()
