# tally-recorder integration tests (sipp as the SRC, real files, ffprobe)
# SIPREC conformance (RFC 7866/7865/8068 examples), RFC 4475 torture, bad input
tally_pytest(rec_conformance rec_conformance.py 400)
tally_pytest(rec_torture rec_torture.py 400)
tally_pytest(rec_badinput rec_badinput.py 300)
# SIPREC INVITEs from the field: AudioCodes without Require: siprec recorded
# (421 with strict-siprec=yes), label 0, media-level c=, a mixed stream,
# boundary= "foo"
tally_pytest(rec_tolerance rec_tolerance.py 60)
# sipp (tests/data/recorder/siprec_src.xml) as the SRC with a 4-stream pcap
# from tests/tools/mkrtp.py: A/V two parties, audio-only policy, pause/resume,
# SIP over TCP;
# files checked with ffprobe/ffmpeg, stereo.wav tones, catalog, sha256.
# Needs root (sipp pcap play); fails (never skips) when something is missing.
tally_pytest(rec_sipp rec_sipp.py 300)
# kill -9 mid-session: media.pcap keeps every packet read, restart recovers.
tally_pytest(rec_crash rec_crash.py 180)
# limits (503 at max-sessions and below the disk floor), PLI/FIR to video
# senders, in-dialog UPDATE pause/resume
tally_pytest(rec_limits rec_limits.py 120)
# issue 10, defect 2: BYE (and a re-INVITE removing a stream) while RTP
# floods the session, 40 times; no sanitizer report, the daemon serves on
tally_pytest(rec_byeflood rec_byeflood.py 120)
# issue 10: descriptors back to the baseline after sessions that end oddly
# (CANCEL, no ACK, paused, every m= refused, TCP dropped, refused, BYE in a
# flood); a paused session ends after inactive-timeout, finalized
tally_pytest(rec_fdleak rec_fdleak.py 180)
# issue 10: with 5,000 folders SIP and HTTP answer within 5 s while the
# recovery scan still runs; a session made meanwhile is left alone; every
# unfinished folder ends complete (bench with 50,000: bench/recstart.py)
tally_pytest(rec_startup rec_startup.py 120)
