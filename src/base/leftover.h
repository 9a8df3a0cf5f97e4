/*
 * leftover.h - what pmt-top makes in a shared directory (/tmp), named so
 * that a later pmt-top can tell whether its maker is still alive.
 *
 * A file or directory pmt-top makes in /tmp is named
 * PREFIX<creator pid>-<creator's pid namespace>-<rest>, so that it counts as
 * stale only when its creator is gone: a pid that no longer exists in the
 * pid namespace the name was made in (the namespace is the inode number of
 * /proc/self/ns/pid; a name from another namespace is never judged, since
 * its pid says nothing here).
 */
#ifndef PMT_BASE_LEFTOVER_H
#define PMT_BASE_LEFTOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Our pid namespace's id (inode of /proc/self/ns/pid), 0 when unknown. */
unsigned long long leftover_pidns(void);

/* Writes "PREFIX<our pid>-<our pid namespace>-" into BUF. Returns 0, or -1
 * when it does not fit. */
int leftover_name(char *buf, size_t len, const char *prefix);

/* Parses a name made by leftover_name() (and what follows it): 0 with the
 * creator, its namespace and *REST (the text after the second '-'), or -1. */
int leftover_parse(const char *name, const char *prefix, pid_t *creator, unsigned long long *pidns,
		   const char **rest);

/* True when CREATOR is known to be dead: PIDNS is ours and no process has
 * that pid. Our own pid is never dead. */
bool leftover_creator_gone(pid_t creator, unsigned long long pidns);

#endif
