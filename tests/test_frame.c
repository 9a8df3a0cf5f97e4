/*
 * test_frame.c - the NDJSON frame reader and writer (src/ipc/frame.c):
 * splitting, limits, bounded memory, linear scanning, real socket I/O with
 * partial reads and writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc/frame.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void feed_all(struct frame_reader *r, const char *s, size_t n)
{
	assert_int_equal(frame_reader_feed(r, s, n), n);
}

static void expect_line(struct frame_reader *r, const char *want)
{
	const char *line = NULL;
	size_t len = 0;

	assert_int_equal(frame_reader_next(r, &line, &len), FRAME_OK);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(line, want, len);
	assert_int_equal(line[len], '\0');
}

static void expect_none(struct frame_reader *r)
{
	const char *line;
	size_t len;

	assert_int_equal(frame_reader_next(r, &line, &len), FRAME_NONE);
}

static void test_single_and_many(void **state)
{
	struct frame_reader r;

	(void)state;
	frame_reader_init(&r, 1024);
	expect_none(&r);
	feed_all(&r, "{\"a\":1}\n", 8);
	expect_line(&r, "{\"a\":1}");
	expect_none(&r);
	assert_int_equal(frame_reader_pending(&r), 0);

	feed_all(&r, "one\ntwo\n\nthree\nfour", 19);
	expect_line(&r, "one");
	expect_line(&r, "two");
	expect_line(&r, ""); /* a blank line is a (bad) frame of length 0 */
	expect_line(&r, "three");
	expect_none(&r);
	assert_int_equal(frame_reader_pending(&r), 4);
	feed_all(&r, "\n", 1);
	expect_line(&r, "four");
	expect_none(&r);
	frame_reader_done(&r);
}

static void test_split_every_byte(void **state)
{
	const char *stream = "{\"id\":1,\"ok\":true,\"result\":{}}\n{\"push\":\"status\",\"data\":{}}\nxyz\n";
	size_t n = strlen(stream);

	(void)state;
	/* Every split point and every chunk size gives the same three frames. */
	for (size_t chunk = 1; chunk <= n; chunk++) {
		struct frame_reader r;
		const char *line;
		size_t len, got = 0;
		char out[3][64];

		frame_reader_init(&r, 64);
		for (size_t at = 0; at < n; at += chunk) {
			size_t k = n - at < chunk ? n - at : chunk;

			feed_all(&r, stream + at, k);
			while (frame_reader_next(&r, &line, &len) == FRAME_OK) {
				assert_true(got < 3);
				assert_true(len < 64);
				memcpy(out[got], line, len + 1);
				got++;
			}
		}
		assert_int_equal(got, 3);
		assert_string_equal(out[0], "{\"id\":1,\"ok\":true,\"result\":{}}");
		assert_string_equal(out[1], "{\"push\":\"status\",\"data\":{}}");
		assert_string_equal(out[2], "xyz");
		frame_reader_done(&r);
	}
}

static void test_limit_exact(void **state)
{
	struct frame_reader r;
	char buf[40];
	const char *line;
	size_t len;

	(void)state;
	/* Limit 16 includes the newline: 15 bytes + '\n' pass, 16 + '\n' do not. */
	frame_reader_init(&r, 16);
	memset(buf, 'a', sizeof buf);
	buf[15] = '\n';
	feed_all(&r, buf, 16);
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_OK);
	assert_int_equal(len, 15);
	buf[15] = 'a';
	buf[16] = '\n';
	feed_all(&r, buf, 17);
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_TOO_LARGE);
	/* Sticky: nothing more is taken and the state repeats. */
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_TOO_LARGE);
	assert_int_equal(frame_reader_feed(&r, "x\n", 2), 0);
	errno = 0;
	assert_int_equal(frame_reader_read(&r, 0), -1);
	assert_int_equal(errno, ENOBUFS);
	frame_reader_reset(&r);
	assert_int_equal(r.limit, 16);
	feed_all(&r, "ok\n", 3);
	expect_line(&r, "ok");
	frame_reader_done(&r);
}

/* An unterminated frame is refused as soon as it reaches the limit. */
static void test_oversize_without_newline(void **state)
{
	struct frame_reader r;
	char buf[100];

	(void)state;
	memset(buf, 'b', sizeof buf);
	frame_reader_init(&r, 50);
	feed_all(&r, buf, 49);
	expect_none(&r); /* 49 bytes could still end with '\n' at byte 50 */
	feed_all(&r, buf, 1);
	const char *line;
	size_t len;
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_TOO_LARGE);
	frame_reader_done(&r);

	/* A frame over the limit after good ones: the good ones come out first. */
	frame_reader_init(&r, 8);
	feed_all(&r, "ab\ncd\nefghijklmnop\n", 19);
	expect_line(&r, "ab");
	expect_line(&r, "cd");
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_TOO_LARGE);
	frame_reader_done(&r);
}

/* Feeding never grows the buffer past limit + FRAME_READ_CHUNK. */
static void test_feed_is_bounded(void **state)
{
	struct frame_reader r;
	size_t n = 4 * 1024 * 1024, taken;
	char *big = malloc(n);
	const char *line;
	size_t len;

	(void)state;
	assert_non_null(big);
	memset(big, 'c', n);
	frame_reader_init(&r, 1000);
	taken = frame_reader_feed(&r, big, n);
	assert_true(taken <= 1000 + FRAME_READ_CHUNK);
	assert_true(taken >= 1000);
	assert_true(r.cap <= 1000 + FRAME_READ_CHUNK);
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_TOO_LARGE);
	frame_reader_done(&r);

	/* Undrained complete frames also stop feeding instead of growing. */
	for (size_t i = 0; i + 9 < n; i += 10)
		big[i + 9] = '\n';
	frame_reader_init(&r, 100);
	taken = frame_reader_feed(&r, big, n);
	assert_true(taken < n);
	assert_true(r.cap <= 100 + FRAME_READ_CHUNK);
	/* Drain and continue: every frame arrives. */
	size_t frames = 0, at = taken;
	for (;;) {
		while (frame_reader_next(&r, &line, &len) == FRAME_OK) {
			assert_int_equal(len, 9);
			frames++;
		}
		if (at == n)
			break;
		taken = frame_reader_feed(&r, big + at, n - at);
		assert_true(taken > 0);
		at += taken;
	}
	assert_int_equal(frames, n / 10);
	frame_reader_done(&r);
	free(big);
}

/*
 * 128 MiB frame fed in 1 KiB pieces with a next() after each: the newline
 * search must resume where it stopped (a rescan would touch ~2^45 bytes).
 */
static void test_big_frame_linear(void **state)
{
	size_t n = 128u * 1024 * 1024, piece = 1024;
	char *big = malloc(n);
	struct frame_reader r;
	const char *line;
	size_t len;
	double t0 = now_s(), took;

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n - 1] = '\n';
	frame_reader_init(&r, n);
	for (size_t at = 0; at < n; at += piece) {
		feed_all(&r, big + at, piece);
		if (at + piece < n) {
			assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_NONE);
			assert_int_equal(r.scan, r.len); /* search resumes here */
		}
	}
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_OK);
	assert_int_equal(len, n - 1);
	assert_memory_equal(line, big, n - 1);
	took = now_s() - t0;
	print_message("128 MiB frame in 1 KiB pieces: %.3f s\n", took);
	assert_true(took < 20.0);
	expect_none(&r);
	assert_null(r.buf); /* a big buffer is released once drained */
	frame_reader_done(&r);
	free(big);
}

struct writer_arg {
	int fd;
	const char *data;
	size_t n;
	unsigned seed;
};

/* Writes data in pseudo-random chunk sizes, then closes. */
static void *writer_thread(void *p)
{
	struct writer_arg *a = p;
	unsigned s = a->seed;

	for (size_t at = 0; at < a->n;) {
		size_t k;
		ssize_t w;

		s = s * 1103515245u + 12345u;
		k = 1 + (s >> 8) % 70000;
		if (k > a->n - at)
			k = a->n - at;
		w = write(a->fd, a->data + at, k);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		at += (size_t)w;
	}
	close(a->fd);
	return NULL;
}

/* Real socket, non-blocking reads, random frame and chunk sizes. */
static void test_read_from_socket(void **state)
{
	int sv[2];
	size_t nframes = 3000, total = 0, at = 0;
	size_t *sizes = calloc(nframes, sizeof *sizes);
	char *data;
	unsigned s = 12345;
	struct frame_reader r;
	struct writer_arg wa;
	pthread_t th;
	size_t got = 0, off = 0;
	bool eof = false;

	(void)state;
	for (size_t i = 0; i < nframes; i++) {
		s = s * 1103515245u + 12345u;
		sizes[i] = (s >> 4) % (i % 100 == 0 ? 200000 : 300);
		total += sizes[i] + 1;
	}
	data = malloc(total);
	for (size_t i = 0; i < nframes; i++) {
		for (size_t j = 0; j < sizes[i]; j++)
			data[at++] = (char)(' ' + (i + j) % 90);
		data[at++] = '\n';
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	wa = (struct writer_arg){ .fd = sv[1], .data = data, .n = total, .seed = 99 };
	assert_int_equal(pthread_create(&th, NULL, writer_thread, &wa), 0);

	frame_reader_init(&r, 200001);
	while (!eof) {
		struct pollfd p = { .fd = sv[0], .events = POLLIN };
		ssize_t n;
		const char *line;
		size_t len;
		enum frame_status st;

		assert_true(poll(&p, 1, 10000) == 1);
		n = frame_reader_read(&r, sv[0]);
		if (n < 0) {
			assert_true(errno == EAGAIN || errno == EINTR);
			continue;
		}
		if (n == 0)
			eof = true;
		while ((st = frame_reader_next(&r, &line, &len)) == FRAME_OK) {
			assert_true(got < nframes);
			assert_int_equal(len, sizes[got]);
			assert_memory_equal(line, data + off, len);
			off += len + 1;
			got++;
		}
		assert_int_equal(st, FRAME_NONE);
	}
	assert_int_equal(got, nframes);
	assert_int_equal(frame_reader_pending(&r), 0);
	pthread_join(th, NULL);
	close(sv[0]);
	frame_reader_done(&r);
	free(data);
	free(sizes);
}

/* EOF in the middle of a frame leaves it pending (the caller reports it). */
static void test_eof_partial(void **state)
{
	int sv[2];
	struct frame_reader r;
	const char *line;
	size_t len;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "done\npart", 9), 9);
	close(sv[1]);
	frame_reader_init(&r, 100);
	assert_int_equal(frame_reader_read(&r, sv[0]), 9);
	assert_int_equal(frame_reader_read(&r, sv[0]), 0);
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_OK);
	assert_string_equal(line, "done");
	assert_int_equal(frame_reader_next(&r, &line, &len), FRAME_NONE);
	assert_int_equal(frame_reader_pending(&r), 4);
	frame_reader_done(&r);
	close(sv[0]);
}

static void test_writer_partial(void **state)
{
	int sv[2], sndbuf = 4096;
	struct frame_writer w;
	size_t frame_len = 1000, nframes = 2000, total = frame_len * nframes;
	char *frame = malloc(frame_len), *got = malloc(total);
	size_t have = 0;
	int rc;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	frame_writer_init(&w);
	for (size_t i = 0; i < nframes; i++) {
		memset(frame, 'A' + (int)(i % 26), frame_len - 1);
		frame[frame_len - 1] = '\n';
		frame_writer_push(&w, frame, frame_len);
	}
	assert_int_equal(frame_writer_pending(&w), total);
	/* The peer does not read: the first flush stops part way. */
	rc = frame_writer_flush(&w, sv[0]);
	assert_int_equal(rc, 0);
	assert_true(frame_writer_pending(&w) > 0);
	assert_true(frame_writer_pending(&w) < total);
	/* Alternate reading and flushing until everything is through. */
	while (have < total) {
		ssize_t n = read(sv[1], got + have, total - have);

		assert_true(n > 0);
		have += (size_t)n;
		rc = frame_writer_flush(&w, sv[0]);
		assert_true(rc >= 0);
		/* Queue more while a write is outstanding: order must hold. */
	}
	assert_int_equal(rc, 1);
	assert_int_equal(frame_writer_pending(&w), 0);
	for (size_t i = 0; i < nframes; i++) {
		assert_int_equal(got[i * frame_len], 'A' + (int)(i % 26));
		assert_int_equal(got[i * frame_len + frame_len - 1], '\n');
	}
	frame_writer_done(&w);
	close(sv[0]);
	close(sv[1]);
	free(frame);
	free(got);
}

/* Interleaved pushes and partial flushes keep byte order. */
static void test_writer_interleaved(void **state)
{
	int sv[2];
	struct frame_writer w;
	char line[64], *got = malloc(1 << 20);
	size_t have = 0, expect = 0;
	unsigned s = 7;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	frame_writer_init(&w);
	for (int i = 0; i < 20000; i++) {
		int n = snprintf(line, sizeof line, "{\"id\":%d}\n", i);

		frame_writer_push(&w, line, (size_t)n);
		expect += (size_t)n;
		s = s * 1103515245u + 12345u;
		if ((s >> 16) % 3 == 0)
			assert_true(frame_writer_flush(&w, sv[0]) >= 0);
		if ((s >> 16) % 5 == 0) {
			ssize_t k = read(sv[1], got + have, (1 << 20) - have);

			if (k > 0)
				have += (size_t)k;
		}
	}
	while (frame_writer_flush(&w, sv[0]) == 0 || have < expect) {
		ssize_t k = read(sv[1], got + have, (1 << 20) - have);

		if (k > 0)
			have += (size_t)k;
	}
	assert_int_equal(have, expect);
	for (int i = 0, at = 0; i < 20000; i++) {
		int n = snprintf(line, sizeof line, "{\"id\":%d}\n", i);

		assert_memory_equal(got + at, line, (size_t)n);
		at += n;
	}
	frame_writer_done(&w);
	close(sv[0]);
	close(sv[1]);
	free(got);
}

/* A closed peer gives EPIPE, not SIGPIPE; pipes (not sockets) work too. */
static void test_writer_errors_and_pipes(void **state)
{
	int sv[2], pp[2];
	struct frame_writer w;
	char buf[16];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	frame_writer_init(&w);
	frame_writer_push(&w, "x\n", 2);
	errno = 0;
	assert_int_equal(frame_writer_flush(&w, sv[0]), -1);
	assert_int_equal(errno, EPIPE);
	assert_int_equal(frame_writer_pending(&w), 2);
	close(sv[0]);

	assert_int_equal(pipe(pp), 0);
	assert_int_equal(frame_writer_flush(&w, pp[1]), 1);
	assert_int_equal(read(pp[0], buf, sizeof buf), 2);
	assert_memory_equal(buf, "x\n", 2);
	close(pp[0]);
	close(pp[1]);
	frame_writer_done(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_and_many),
		cmocka_unit_test(test_split_every_byte),
		cmocka_unit_test(test_limit_exact),
		cmocka_unit_test(test_oversize_without_newline),
		cmocka_unit_test(test_feed_is_bounded),
		cmocka_unit_test(test_big_frame_linear),
		cmocka_unit_test(test_read_from_socket),
		cmocka_unit_test(test_eof_partial),
		cmocka_unit_test(test_writer_partial),
		cmocka_unit_test(test_writer_interleaved),
		cmocka_unit_test(test_writer_errors_and_pipes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
