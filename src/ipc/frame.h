/*
 * frame.h - newline-delimited frames (NDJSON) over a byte stream.
 *
 * A frame is every byte up to and including a '\n' (docs/protocol.md,
 * "Framing"). struct frame_reader collects bytes from a socket (or from a
 * caller) and yields complete frames one at a time; struct frame_writer queues
 * outgoing bytes and writes them to a non-blocking fd as the fd accepts them.
 *
 * Both are plain embedded objects (frame_*_init / frame_*_done) with no
 * internal locking: one thread at a time.
 */
#ifndef PMT_IPC_FRAME_H
#define PMT_IPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Result of frame_reader_next(). */
enum frame_status {
	FRAME_NONE = 0,      /* no complete frame buffered: feed or read more */
	FRAME_OK = 1,        /* *line / *len describe the next frame */
	FRAME_TOO_LARGE = -1 /* a frame exceeds the limit; sticky until reset */
};

/*
 * Incoming frames. Memory use is bounded by the limit: the buffer never holds
 * more than limit + FRAME_READ_CHUNK bytes. The newline search resumes where it
 * stopped, so a frame of n bytes costs O(n) however it is split into reads.
 */
struct frame_reader {
	char *buf;
	size_t cap;   /* allocated bytes */
	size_t start; /* first byte of the first frame not yet returned */
	size_t len;   /* bytes buffered (end of valid data) */
	size_t scan;  /* [start, scan) is known to hold no '\n' */
	size_t limit; /* largest frame, newline included */
	bool too_large;
};

/* Granularity of reads and the buffer's headroom over the limit. */
#define FRAME_READ_CHUNK (64 * 1024)

/*
 * Prepares an empty reader that accepts frames of at most `limit` bytes,
 * newline included (e.g. PROTO_MAX_REPLY). limit must be >= 1. Allocates
 * nothing until bytes arrive.
 */
void frame_reader_init(struct frame_reader *r, size_t limit);

/* Frees the buffer. The reader may be initialised again afterwards. */
void frame_reader_done(struct frame_reader *r);

/* Drops buffered bytes and a sticky FRAME_TOO_LARGE; keeps the limit. */
void frame_reader_reset(struct frame_reader *r);

/*
 * Appends up to n bytes from data and returns how many were taken. Fewer than
 * n (possibly 0) are taken when the buffer is at its bound: call
 * frame_reader_next() until it returns FRAME_NONE, then feed the rest. After
 * FRAME_TOO_LARGE nothing more is taken.
 */
size_t frame_reader_feed(struct frame_reader *r, const void *data, size_t n);

/*
 * One read(2) from fd into the buffer (as much as fits, at least
 * FRAME_READ_CHUNK when the buffer is drained). Returns the bytes read (> 0),
 * 0 at end of stream, or -1 with errno set: EAGAIN/EWOULDBLOCK/EINTR for a
 * non-blocking fd with nothing to read, ENOBUFS when the buffer is full of
 * frames the caller has not taken with frame_reader_next() (or the reader is
 * in the FRAME_TOO_LARGE state), else read(2)'s errno.
 */
ssize_t frame_reader_read(struct frame_reader *r, int fd);

/*
 * Takes the next complete frame. On FRAME_OK, *line points at its first byte
 * and *len is its length without the '\n', which is replaced by '\0' so the
 * line is a C string (JSON text holds no raw NUL; embedded NULs are still
 * counted in *len). The line stays valid until the next call to any
 * frame_reader function. Returns FRAME_NONE when no complete frame is
 * buffered, FRAME_TOO_LARGE when the frame at the head is (or, still
 * incomplete, already is) longer than the limit.
 */
enum frame_status frame_reader_next(struct frame_reader *r, const char **line, size_t *len);

/* Bytes buffered but not yet returned as frames (partial frame included). */
size_t frame_reader_pending(const struct frame_reader *r);

/*
 * Outgoing bytes. Frames are appended whole; frame_writer_flush() writes as
 * much as a non-blocking fd accepts and remembers where it stopped.
 */
struct frame_writer {
	char *buf;
	size_t cap;
	size_t head; /* first unwritten byte */
	size_t len;  /* end of queued bytes */
};

void frame_writer_init(struct frame_writer *w);
void frame_writer_done(struct frame_writer *w);

/* Queues a copy of data[0..n). The caller includes the '\n'. Aborts on OOM. */
void frame_writer_push(struct frame_writer *w, const void *data, size_t n);

/* Bytes queued and not yet written. */
size_t frame_writer_pending(const struct frame_writer *w);

/*
 * Writes queued bytes to fd until they are all written or the fd would block.
 * Uses send(MSG_NOSIGNAL) on sockets so a closed peer gives EPIPE, not
 * SIGPIPE. Returns 1 when nothing is left queued, 0 when bytes remain (fd
 * would block: wait for POLLOUT), -1 with errno set on a write error (the
 * queue is kept; the caller usually closes the connection).
 */
int frame_writer_flush(struct frame_writer *w, int fd);

#endif
