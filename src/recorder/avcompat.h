/*
 * avcompat.h: every FFmpeg version check of tally-recorder, in one place.
 *
 * AVC_MKV_OPUS_DELAY_BUG: libavformat up to 59.30.100 (FFmpeg 5.1, Debian
 * 12) writes an Opus track's pre-skip into Matroska/WebM as CodecDelay
 * but does not add it to the track's block timestamps, while every reader
 * (libavformat's own demuxer, browsers) subtracts CodecDelay from them.
 * The Opus packets (first pts = start - pre-skip, negative at the session
 * origin) are instead shifted with every other track by the generic
 * avoid-negative-timestamps code, so after reading the audio sits one
 * pre-skip (312 samples, 6.5 ms) early against the video. Later versions
 * add the delay themselves (matroskaenc ts_offset + lowest_ts_allowed),
 * so avout.c adds it only where this is set; measured with 5.1.9:
 * tracks.mkv audio 7 ms early against alice.mp4 before, 0.5 ms after
 * (Matroska's 1 ms timestamp grid).
 */
#ifndef TALLY_AVCOMPAT_H
#define TALLY_AVCOMPAT_H

#include <libavformat/version.h>
#include <libavutil/version.h>

#define AVC_MKV_OPUS_DELAY_BUG \
	(LIBAVFORMAT_VERSION_INT <= AV_VERSION_INT(59, 30, 100))

#endif
