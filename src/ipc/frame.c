/*
 * frame.c - NDJSON frame reader and writer (see frame.h).
 *
 * The reader keeps one buffer: [start, len) are unconsumed bytes and
 * [start, scan) is known to hold no newline, so each byte is searched once.
 * Consumed bytes are reclaimed by moving the tail down only when that costs
 * no more than the space it frees (or when the bound leaves no choice), which
 * keeps reading linear in the stream length.
 */
#include "ipc/frame.h"
#include "base/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A buffer bigger than this is released once drained. */
#define FRAME_KEEP_BYTES (1024 * 1024)

static size_t reader_bound(const struct frame_reader *r)
{
	if (r->limit > SIZE_MAX - FRAME_READ_CHUNK)
		return SIZE_MAX;
	return r->limit + FRAME_READ_CHUNK;
}

void frame_reader_init(struct frame_reader *r, size_t limit)
{
	memset(r, 0, sizeof *r);
	r->limit = limit ? limit : 1;
}

void frame_reader_done(struct frame_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->start = r->len = r->scan = 0;
	r->too_large = false;
}

void frame_reader_reset(struct frame_reader *r)
{
	size_t limit = r->limit;

	frame_reader_done(r);
	r->limit = limit;
}

static void reader_compact(struct frame_reader *r)
{
	size_t pending = r->len - r->start;

	if (pending)
		memmove(r->buf, r->buf + r->start, pending);
	r->scan -= r->start;
	r->len = pending;
	r->start = 0;
}

/* Makes room for `want` more bytes if the bound allows; returns the room. */
static size_t reader_room(struct frame_reader *r, size_t want)
{
	size_t bound = reader_bound(r);

	if (r->cap - r->len >= want)
		return r->cap - r->len;
	if (r->start > 0 && (r->start >= r->len - r->start || r->cap >= bound))
		reader_compact(r);
	if (r->cap - r->len < want && r->cap < bound) {
		size_t ncap = r->cap < 4096 ? 4096 : r->cap;

		while (ncap - r->len < want && ncap < bound)
			ncap = ncap > bound / 2 ? bound : ncap * 2;
		if (ncap > bound)
			ncap = bound;
		r->buf = xrealloc(r->buf, ncap);
		r->cap = ncap;
	}
	if (r->cap - r->len < want && r->start > 0) {
		reader_compact(r);
	}
	return r->cap - r->len;
}

size_t frame_reader_feed(struct frame_reader *r, const void *data, size_t n)
{
	size_t room, take;

	if (r->too_large || n == 0)
		return 0;
	room = reader_room(r, n);
	take = n < room ? n : room;
	if (take) {
		memcpy(r->buf + r->len, data, take);
		r->len += take;
	}
	return take;
}

ssize_t frame_reader_read(struct frame_reader *r, int fd)
{
	size_t room;
	ssize_t n;

	if (r->too_large) {
		errno = ENOBUFS;
		return -1;
	}
	room = reader_room(r, FRAME_READ_CHUNK);
	if (room == 0) {
		errno = ENOBUFS;
		return -1;
	}
	n = read(fd, r->buf + r->len, room);
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

enum frame_status frame_reader_next(struct frame_reader *r, const char **line, size_t *len)
{
	char *nl;
	size_t flen;

	if (r->too_large)
		return FRAME_TOO_LARGE;
	if (r->start == r->len) {
		/* Drained: rewind for free, and give back a big buffer. */
		r->start = r->len = r->scan = 0;
		if (r->cap > FRAME_KEEP_BYTES) {
			free(r->buf);
			r->buf = NULL;
			r->cap = 0;
		}
		return FRAME_NONE;
	}
	nl = memchr(r->buf + r->scan, '\n', r->len - r->scan);
	if (nl == NULL) {
		r->scan = r->len;
		if (r->len - r->start >= r->limit) {
			r->too_large = true;
			return FRAME_TOO_LARGE;
		}
		return FRAME_NONE;
	}
	flen = (size_t)(nl - (r->buf + r->start)) + 1;
	if (flen > r->limit) {
		r->too_large = true;
		return FRAME_TOO_LARGE;
	}
	*nl = '\0';
	*line = r->buf + r->start;
	*len = flen - 1;
	r->start += flen;
	r->scan = r->start;
	return FRAME_OK;
}

size_t frame_reader_pending(const struct frame_reader *r)
{
	return r->len - r->start;
}

void frame_writer_init(struct frame_writer *w)
{
	memset(w, 0, sizeof *w);
}

void frame_writer_done(struct frame_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof *w);
}

void frame_writer_push(struct frame_writer *w, const void *data, size_t n)
{
	if (n == 0)
		return;
	if (w->head == w->len)
		w->head = w->len = 0;
	if (w->cap - w->len < n && w->head > 0 && w->head >= w->len - w->head) {
		memmove(w->buf, w->buf + w->head, w->len - w->head);
		w->len -= w->head;
		w->head = 0;
	}
	if (w->cap - w->len < n) {
		size_t ncap = w->cap < 4096 ? 4096 : w->cap;

		if (n > SIZE_MAX - w->len)
			xalloc_die(SIZE_MAX);
		while (ncap - w->len < n)
			ncap = ncap > SIZE_MAX / 2 ? w->len + n : ncap * 2;
		w->buf = xrealloc(w->buf, ncap);
		w->cap = ncap;
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
}

size_t frame_writer_pending(const struct frame_writer *w)
{
	return w->len - w->head;
}

int frame_writer_flush(struct frame_writer *w, int fd)
{
	bool sock = true;

	while (w->head < w->len) {
		ssize_t n;

		if (sock) {
			n = send(fd, w->buf + w->head, w->len - w->head, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			n = write(fd, w->buf + w->head, w->len - w->head);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		w->head += (size_t)n;
	}
	w->head = w->len = 0;
	if (w->cap > FRAME_KEEP_BYTES) {
		free(w->buf);
		w->buf = NULL;
		w->cap = 0;
	}
	return 1;
}
