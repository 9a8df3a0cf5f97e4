/*
 * leftover.h - what a pmt-top killed before it could clean up leaves in a
 * shared directory (/tmp), named so that a later pmt-top can tell, and
 * removed safely.
 *
 * A file or directory pmt-top makes in /tmp is named
 * PREFIX<creator pid>-<creator's pid namespace>-<rest>, so that it counts as
 * stale only when its creator is gone: a pid that no longer exists in the
 * pid namespace the name was made in (the namespace is the inode number of
 * /proc/self/ns/pid; a name from another namespace is never judged, since
 * its pid says nothing here).
 *
 * leftover_sweep() runs as root, in directories everyone may write to, so
 * it trusts nothing but descriptors: the directory is opened with
 * O_NOFOLLOW|O_DIRECTORY and refused when everyone may write to it without
 * the sticky bit; every entry is checked with fstatat(AT_SYMLINK_NOFOLLOW)
 * (type, owner, mode), directories are then opened with O_NOFOLLOW and
 * checked again with fstat on that descriptor, and everything is removed
 * with unlinkat relative to descriptors. Symbolic links are never followed
 * and never removed; anything owned by another uid is left alone.
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

/* What leftover_sweep() removes. */
struct leftover_kind {
	const char *prefix;  /* names start with this (see leftover_name) */
	const char *suffix;  /* ... and end with this, or NULL */
	bool directory;      /* a directory tree (else a regular file) */
	mode_t modes[2];     /* the permission bits it must have (one of the two) */
	int max_depth;       /* directories: how deep the tree may go */
};

/*
 * Removes, in the directory open as DIRFD, every entry of KIND whose creator
 * is gone, owned by our effective uid, of the right type and mode (see the
 * top of this file). A directory whose tree holds anything unexpected
 * (deeper than max_depth) is left as far as it could not be removed.
 * Returns how many entries were removed. Bounded: looks at most at 100000
 * entries. Not thread-safe with another sweep of the same directory (both
 * would only race to remove the same things).
 */
int leftover_sweep(int dirfd, const struct leftover_kind *kind);

/* The same for the directory PATH, opened as described above; 0 when it
 * cannot be opened or is unsafe to sweep. */
int leftover_sweep_path(const char *path, const struct leftover_kind *kind);

#endif
