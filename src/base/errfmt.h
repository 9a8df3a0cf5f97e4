/*
 * errfmt.h - the one-line error sentences every module hands back.
 *
 * Functions that can fail take (char *err, size_t errlen) and fill it with one
 * line saying what happened and what to do; errfmt formats it, tolerates a
 * NULL or empty buffer, folds any newline into a space so a message never
 * breaks a status line or a one-line error on stderr, and makes the rest
 * display-safe (strsafe.h), since messages quote text from the target.
 */
#ifndef PMT_BASE_ERRFMT_H
#define PMT_BASE_ERRFMT_H

#include <stddef.h>

void errfmt(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
