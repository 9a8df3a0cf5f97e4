/*
 * gotcase.c - a shared object that calls malloc and free through its GOT,
 * for test_got.c (built twice: lazily bound, and with full RELRO).
 */
#include <stdlib.h>
#include <string.h>

void *gotcase_alloc(size_t n);
void gotcase_free(void *p);
void *gotcase_realloc(void *p, size_t n);

void *gotcase_alloc(size_t n)
{
	char *p = malloc(n);
	if (p)
		memset(p, 7, n);
	return p;
}

void gotcase_free(void *p)
{
	free(p);
}

void *gotcase_realloc(void *p, size_t n)
{
	return realloc(p, n);
}
