/*
 * finalize.h: turn one session folder (session.json + media.pcap, see
 * docs/recording-format.md) into playable files:
 *   - per participant: its audio and video in one file that plays in
 *     Chromium, VLC and ffplay (H.264 -> .mp4, VP8 -> .webm, audio only ->
 *     .webm/Opus); video is never transcoded, audio may be;
 *   - tracks.mkv: every accepted stream as its own track;
 *   - stereo.wav: the first two participants' audio, one per channel.
 * Timing follows the wall clock (pcap arrival times): a pause or silence
 * becomes silence or a held frame, not a jump. A/V sync within 40 ms from
 * RTCP sender reports. Reordered and duplicate packets are sorted out here.
 *
 * Runs in any thread, blocking, no libre main-loop calls. Writes each file
 * under a temporary name and renames it when done, so a crash never leaves a
 * file that looks finished but is not.
 */
#ifndef TALLY_REC_FINALIZE_H
#define TALLY_REC_FINALIZE_H

#include "sessfile.h"

struct fin_stats {
	uint64_t packets;        /* RTP packets read from the capture */
	uint64_t rtcp;           /* RTCP packets read */
	uint64_t duplicates;     /* dropped as duplicates */
	uint64_t reordered;      /* arrived out of order, sorted */
	uint64_t bad;            /* failed to depacketize (skipped) */
	uint64_t frames_video;   /* video frames written */
	double media_seconds;    /* length of the recording timeline */
	double wall_seconds;     /* time finalize took */
};

/*
 * Make the files of the session in DIR. SF is the session as loaded from
 * DIR/session.json; on return SF->files lists what was made (name, kind,
 * participant, size, sha256). Does not write session.json: the caller does.
 * Returns 0, or an errno with REASON (REASON_SIZE bytes) saying why, e.g.
 * "no media received" (ENODATA).
 */
int finalize_session(const char *dir, struct sessfile *sf,
		     struct fin_stats *st, char *reason, size_t reason_size);

#endif
