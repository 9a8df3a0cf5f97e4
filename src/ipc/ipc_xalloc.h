/*
 * ipc_xalloc.h - allocation wrappers for src/ipc that abort on out-of-memory.
 *
 * Private to src/ipc (public ipc headers do not include it), header-only so
 * the library exports no extra symbols.
 */
#ifndef PMT_IPC_IPC_XALLOC_H
#define PMT_IPC_IPC_XALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void ipc_xalloc_die(size_t n)
{
	fprintf(stderr, "pmt-top: out of memory (allocating %zu bytes)\n", n);
	abort();
}

static inline void *ipc_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		ipc_xalloc_die(n);
	return p;
}

static inline void *ipc_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		ipc_xalloc_die(nmemb * size);
	return p;
}

static inline void *ipc_xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n ? n : 1);
	if (p == NULL)
		ipc_xalloc_die(n);
	return p;
}

static inline char *ipc_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ipc_xmalloc(n);
	memcpy(p, s, n);
	return p;
}

#endif
