/*
 * strsafe.h - make text that came from the target safe to show.
 *
 * pmt-top runs as root against processes of less-trusted users, and prints
 * what those processes tell it: function and file names (a program may set
 * co_qualname to anything), source lines, thread names, its command line,
 * snapshot labels, the agent's error messages, paths from its environment.
 * Written raw, such text could move root's cursor, retitle the window, feed
 * keys back through terminal answerback, or reorder what root reads. Every
 * output path passes target text through this one module.
 *
 * The contract: valid UTF-8 is kept, except that each of these becomes '?':
 *   - C0 controls U+0000-U+001F and DEL U+007F (tab and newline included),
 *   - C1 controls U+0080-U+009F (a terminal may take U+009B as CSI),
 *   - bidirectional controls U+061C, U+200E, U+200F, U+202A-U+202E and
 *     U+2066-U+2069 (they make text display in another order than it is),
 *   - the line and paragraph separators U+2028, U+2029 and U+FEFF,
 *   - each byte of invalid UTF-8: bad lead or continuation bytes, truncated,
 *     overlong, surrogate (U+D800-U+DFFF) or above U+10FFFF sequences.
 * Output is always NUL-terminated and never ends in part of a UTF-8 sequence.
 * All functions are pure or write only to the given FILE; thread-safe.
 */
#ifndef PMT_BASE_STRSAFE_H
#define PMT_BASE_STRSAFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What strsafe_decode gives for a byte that does not start valid UTF-8. */
#define STRSAFE_INVALID 0xFFFFFFFFu

/*
 * Decodes the UTF-8 sequence at S (N > 0 bytes readable; a NUL byte ends a
 * sequence like any other non-continuation byte). Returns the code point and
 * sets *LEN to its length in bytes, or returns STRSAFE_INVALID with *LEN = 1.
 */
uint32_t strsafe_decode(const char *s, size_t n, size_t *len);

/* Whether code point CP may be shown as it is (false for the classes above
 * and for STRSAFE_INVALID). The one classification every printer uses. */
bool strsafe_cp_ok(uint32_t cp);

/*
 * Copies SRCLEN bytes of SRC (NUL bytes in it count as C0 controls) into DST
 * of DSTLEN bytes, display-safe, NUL-terminated, cut only between whole
 * characters. Returns the number of bytes of SRC consumed: SRCLEN when all
 * of it fitted. DSTLEN 0 writes nothing.
 */
size_t strsafe_copy(char *dst, size_t dstlen, const char *src, size_t srclen);

/*
 * For messages: a display-safe copy of the string S (NULL reads as "") into
 * BUF, ending in "..." when it had to be cut. Returns BUF.
 */
char *strsafe_shown(char *buf, size_t buflen, const char *s);

/* Makes the string S display-safe in place (the result is never longer). */
void strsafe_inplace(char *s);

/* Writes the string S to FP display-safe. Returns EOF on a write error. */
int strsafe_fputs(const char *s, FILE *fp);

/*
 * Writes JSON text (as cJSON prints it) to FP with every character the
 * contract rejects, inside its strings, written as a \uXXXX escape instead:
 * the same JSON value, but nothing a terminal acts on. Invalid UTF-8 bytes
 * become \ufffd. Returns EOF on a write error.
 */
int strsafe_fputs_json(const char *json, FILE *fp);

/*
 * Formats like printf and writes the result to stderr as one display-safe
 * line, adding the newline (FMT has none): the printer for one-line errors
 * that may quote the target ("pmt-top: %s").
 */
void strsafe_eprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
