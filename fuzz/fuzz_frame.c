/*
 * fuzz_frame.c - libFuzzer harness for the NDJSON frame reader (src/ipc/frame.c).
 *
 * The agent's socket is hostile input: its bytes arrive in whatever pieces the
 * kernel hands over. The first four bytes of an input choose the frame limit
 * and seed the sizes of the pieces; the rest is the stream. Pieces go in
 * through frame_reader_feed() or, one in four, through frame_reader_read()
 * from a pipe, and every frame is taken as soon as it is complete. Each frame
 * is checked against the stream itself: the same bytes, no newline inside,
 * within the limit, and FRAME_TOO_LARGE only for a frame that really is too
 * long. Any disagreement aborts, which libFuzzer reports as a crash.
 */
#include "ipc/frame.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int pipefd[2] = { -1, -1 };

static _Noreturn void broken(const char *what)
{
	fprintf(stderr, "fuzz_frame: %s\n", what);
	abort();
}

/* xorshift32: piece sizes that the input's header decides. */
static uint32_t next_rand(uint32_t *s)
{
	uint32_t x = *s ? *s : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

struct check {
	const uint8_t *stream;
	size_t len;  /* bytes of the stream handed to the reader so far */
	size_t at;   /* start of the next frame in the stream */
	size_t limit;
	bool too_large;
};

/* Takes every complete frame and compares it with the stream. */
static void drain(struct frame_reader *r, struct check *c)
{
	for (;;) {
		const char *line;
		size_t len;
		enum frame_status st = frame_reader_next(r, &line, &len);

		if (st == FRAME_NONE) {
			const uint8_t *nl = memchr(c->stream + c->at, '\n', c->len - c->at);

			if (nl != NULL)
				broken("a complete frame was neither returned nor refused");
			if (c->len - c->at >= c->limit)
				broken("a partial frame over the limit was not refused");
			if (frame_reader_pending(r) != c->len - c->at)
				broken("pending bytes do not match the stream");
			return;
		}
		if (st == FRAME_TOO_LARGE) {
			const uint8_t *nl = memchr(c->stream + c->at, '\n', c->len - c->at);
			size_t flen = nl ? (size_t)(nl - (c->stream + c->at)) + 1 : c->len - c->at;

			if (flen < c->limit || (nl != NULL && flen == c->limit))
				broken("FRAME_TOO_LARGE for a frame within the limit");
			c->too_large = true;
			return;
		}
		if (len + 1 > c->limit)
			broken("a frame longer than the limit was returned");
		if (c->at + len >= c->len || c->stream[c->at + len] != '\n')
			broken("a frame does not end where the stream's newline is");
		if (memcmp(line, c->stream + c->at, len) != 0)
			broken("a frame's bytes differ from the stream");
		if (memchr(line, '\n', len) != NULL || line[len] != '\0')
			broken("a frame holds a newline or is not terminated");
		c->at += len + 1;
	}
}

/* One piece through a pipe and frame_reader_read(). Returns bytes taken. */
static size_t through_pipe(struct frame_reader *r, const uint8_t *p, size_t n)
{
	ssize_t w, got;

	if (pipefd[0] < 0 && pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) < 0)
		broken("no pipe");
	w = write(pipefd[1], p, n);
	if (w <= 0)
		return 0;
	got = frame_reader_read(r, pipefd[0]);
	if (got < 0) {
		/* Full of frames not yet taken: empty the pipe, nothing taken. */
		char sink[4096];

		while (read(pipefd[0], sink, sizeof sink) > 0)
			;
		return 0;
	}
	if (got != w) {
		/* Less room than the piece: the rest stays in the pipe. */
		char sink[4096];

		while (read(pipefd[0], sink, sizeof sink) > 0)
			;
	}
	return (size_t)got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader r;
	struct check c;
	uint32_t seed;
	size_t limit, off;

	if (size < 4)
		return 0;
	limit = 1 + ((size_t)data[0] | (size_t)data[1] << 8) % 4096;
	seed = (uint32_t)data[2] | (uint32_t)data[3] << 8;
	memset(&c, 0, sizeof c);
	c.stream = data + 4;
	c.limit = limit;
	frame_reader_init(&r, limit);
	for (off = 4; off < size && !c.too_large;) {
		uint32_t x = next_rand(&seed);
		size_t piece = 1 + x % 97, took;

		if (piece > size - off)
			piece = size - off;
		if (x >> 30 == 0)
			took = through_pipe(&r, data + off, piece);
		else
			took = frame_reader_feed(&r, data + off, piece);
		c.len += took;
		off += took;
		drain(&r, &c);
		if (took == 0 && !c.too_large)
			broken("the reader took nothing after every frame was taken");
	}
	if (c.too_large && frame_reader_feed(&r, "x\n", 2) != 0)
		broken("bytes taken after FRAME_TOO_LARGE");
	frame_reader_reset(&r);
	if (frame_reader_pending(&r) != 0)
		broken("bytes left after a reset");
	frame_reader_done(&r);
	return 0;
}
