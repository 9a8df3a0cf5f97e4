/*
 * gotcase.c - a shared object that calls malloc and free through its GOT,
 * for test_got.c (built twice: lazily bound, and with full RELRO).
 */
#include <stdlib.h>
#include <string.h>

void *gotcase_alloc(size_t n);
void gotcase_free(void *p);
void *gotcase_realloc(void *p, size_t n);
void *gotcase_alloc_ptr(size_t n);

/* A pointer variable initialised with malloc (as libxml2's xmlMalloc): an
 * absolute relocation against malloc, not a GOT entry. */
void *(*gotcase_mallocp)(size_t) = malloc;

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

void *gotcase_alloc_ptr(size_t n)
{
	return gotcase_mallocp(n);
}
