/*
 * nativecase.c - a C library that allocates through its own GOT, as a C
 * extension or a wrapped library does, for the profiler's native-allocation
 * tests (tests/agent/test_native.py loads it with ctypes).
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

void *nc_keep(size_t n);
void *nc_keep_zeroed(size_t k, size_t n);
void *nc_keep_aligned(size_t align, size_t n);
void *nc_grow(void *p, size_t n);
void *nc_keep_via_pointer(size_t n);
void nc_free(void *p);
void *nc_keep_array(size_t k, size_t n);
void *nc_keep_aligned_alloc(size_t align, size_t n);
void *nc_keep_memalign(size_t align, size_t n);
void *nc_keep_valloc(size_t n);
void nc_churn(long rounds);

/* As libxml2's xmlMalloc: a pointer variable set to malloc. */
void *(*nc_mallocp)(size_t) = malloc;

void *nc_keep(size_t n)
{
	char *p = malloc(n);
	if (p)
		memset(p, 1, n);
	return p;
}

void *nc_keep_zeroed(size_t k, size_t n)
{
	return calloc(k, n);
}

void *nc_keep_aligned(size_t align, size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, align, n) != 0)
		return NULL;
	memset(p, 2, n);
	return p;
}

void *nc_grow(void *p, size_t n)
{
	return realloc(p, n);
}

void *nc_keep_via_pointer(size_t n)
{
	char *p = nc_mallocp(n);
	if (p)
		memset(p, 3, n);
	return p;
}

void *nc_keep_array(size_t k, size_t n)
{
	return reallocarray(NULL, k, n);
}

void *nc_keep_aligned_alloc(size_t align, size_t n)
{
	return aligned_alloc(align, n);
}

void *nc_keep_memalign(size_t align, size_t n)
{
	return memalign(align, n);
}

void *nc_keep_valloc(size_t n)
{
	return valloc(n);
}

void nc_free(void *p)
{
	free(p);
}

/* Malloc-heavy work: blocks of many sizes made, grown and freed. */
void nc_churn(long rounds)
{
	void *held[32];
	for (long r = 0; r < rounds; r++) {
		for (int i = 0; i < 32; i++)
			held[i] = malloc((size_t)(16 + ((r + i) % 64) * 24));
		for (int i = 0; i < 32; i += 2)
			held[i] = realloc(held[i], (size_t)(200 + i * 8));
		for (int i = 0; i < 32; i++)
			free(held[i]);
	}
}
