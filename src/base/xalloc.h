/*
 * xalloc.h - allocation wrappers that abort on out-of-memory.
 *
 * In src/ipc, the lowest library, so that every library can use it.
 *
 * pmt-top treats running out of memory as fatal: these wrappers print one line
 * to stderr and abort(), so callers never check for NULL. Safe from any thread.
 */
#ifndef PMT_BASE_XALLOC_H
#define PMT_BASE_XALLOC_H

#include <stddef.h>

/* Print "out of memory" and abort: for allocations made elsewhere (cJSON). */
_Noreturn void xalloc_die(size_t n);

/* malloc(n); a zero size still returns a unique pointer. Never returns NULL. */
/* FN runs before the out-of-memory message is printed (the TUI restores
 * the terminal there). One hook; NULL removes it. */
void xalloc_on_die(void (*fn)(void));

void *xmalloc(size_t n);
/* calloc(nmemb, size) with overflow check. Never returns NULL. */
void *xcalloc(size_t nmemb, size_t size);
/* realloc(p, n); n == 0 frees nothing and returns a minimal block. */
void *xrealloc(void *p, size_t n);
/* realloc(p, nmemb * size) with overflow check. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
/* strdup(s); s must not be NULL. */
char *xstrdup(const char *s);
/* strndup(s, n). */
char *xstrndup(const char *s, size_t n);
/* asprintf into a fresh string the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
