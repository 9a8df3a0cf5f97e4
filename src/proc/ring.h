/*
 * ring.h - a single-producer single-consumer ring buffer of fixed-size items.
 *
 * The /proc sampler thread pushes samples, the UI thread pops them. Header-only,
 * C11 atomics, no locks. The layout follows the usual fast SPSC design:
 *
 *   - capacity is a power of two; head and tail are 64-bit counters that only
 *     grow and are masked on access, so full/empty need no extra flag;
 *   - the producer's state and the consumer's state each sit on their own
 *     64-byte cache line, and each side keeps a cached copy of the other side's
 *     index, refreshed with an acquire load only when the cache says "full"
 *     (producer) or "empty" (consumer);
 *   - items are published with a release store of the index.
 *
 * Contract: exactly one thread calls ring_push/ring_push_n, exactly one thread
 * calls ring_pop/ring_pop_n/ring_count_for_consumer. ring_init and ring_done run
 * while no other thread uses the ring. Items are copied by value (memcpy).
 */
#ifndef PMT_PROC_RING_H
#define PMT_PROC_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RING_CACHE_LINE 64

struct ring {
	/* Read-only after init. */
	alignas(RING_CACHE_LINE) unsigned char *buf;
	size_t item_size;
	uint64_t mask;

	/* Producer line: its own index and its cached view of the consumer's. */
	alignas(RING_CACHE_LINE) _Atomic uint64_t head;
	uint64_t tail_cache;

	/* Consumer line. */
	alignas(RING_CACHE_LINE) _Atomic uint64_t tail;
	uint64_t head_cache;
};

/* Initialise for capacity items of item_size bytes. Returns -1 if capacity is
 * not a power of two (or is 0) or memory is short. */
static inline int ring_init(struct ring *r, size_t capacity, size_t item_size)
{
	if (capacity == 0 || (capacity & (capacity - 1)) != 0 || item_size == 0)
		return -1;
	memset(r, 0, sizeof *r);
	r->buf = calloc(capacity, item_size);
	if (r->buf == NULL)
		return -1;
	r->item_size = item_size;
	r->mask = capacity - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

static inline void ring_done(struct ring *r)
{
	free(r->buf);
	r->buf = NULL;
}

static inline size_t ring_capacity(const struct ring *r)
{
	return (size_t)r->mask + 1;
}

/* Producer: copy up to n items in; returns how many fitted (0 when full). */
static inline size_t ring_push_n(struct ring *r, const void *items, size_t n)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t cap = r->mask + 1;
	uint64_t room = cap - (head - r->tail_cache);

	if (room < n) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		room = cap - (head - r->tail_cache);
	}
	if (n > room)
		n = (size_t)room;
	if (n == 0)
		return 0;

	/* At most two copies: up to the end of the buffer, then from its start. */
	size_t at = (size_t)(head & r->mask);
	size_t first = (size_t)cap - at < n ? (size_t)cap - at : n;
	memcpy(r->buf + at * r->item_size, items, first * r->item_size);
	if (n > first)
		memcpy(r->buf, (const unsigned char *)items + first * r->item_size,
		       (n - first) * r->item_size);
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

static inline bool ring_push(struct ring *r, const void *item)
{
	return ring_push_n(r, item, 1) == 1;
}

/* Consumer: copy up to n items out; returns how many (0 when empty). */
static inline size_t ring_pop_n(struct ring *r, void *items, size_t n)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t avail = r->head_cache - tail;

	if (avail < n) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		avail = r->head_cache - tail;
	}
	if (n > avail)
		n = (size_t)avail;
	if (n == 0)
		return 0;

	uint64_t cap = r->mask + 1;
	size_t at = (size_t)(tail & r->mask);
	size_t first = (size_t)cap - at < n ? (size_t)cap - at : n;
	memcpy(items, r->buf + at * r->item_size, first * r->item_size);
	if (n > first)
		memcpy((unsigned char *)items + first * r->item_size, r->buf,
		       (n - first) * r->item_size);
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

static inline bool ring_pop(struct ring *r, void *item)
{
	return ring_pop_n(r, item, 1) == 1;
}

#endif
