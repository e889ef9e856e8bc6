# tally-sip unit tests: tally_unit(test_x test_x.c LIBS tallysip_lib)
