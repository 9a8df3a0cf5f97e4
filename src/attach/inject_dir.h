/*
 * inject_dir.h - the private directories pmt-top makes in a target's /tmp
 * to hand it the agent bootstrap (see inject.h): their names, the ones a
 * killed pmt-top left behind, and the ones another pmt-top is using now.
 *
 * A directory is named pmt-top-inject-<creator pid>-<creator's pid
 * namespace>-<target pid>-<16 random hex digits> (leftover.h: the creator
 * and its namespace tell whether it is stale; the target, as the creator
 * sees it, tells another pmt-top that somebody is loading the agent into
 * that process already).
 */
#ifndef PMT_ATTACH_INJECT_DIR_H
#define PMT_ATTACH_INJECT_DIR_H

#include <stddef.h>
#include <sys/types.h>

#define INJECT_DIR_PREFIX "pmt-top-inject-"

/* A fresh name for a directory for TARGET into BUF. Returns 0, or -1 when
 * it does not fit (LEN of 96 always does). */
int inject_dir_name(pid_t target, char *buf, size_t len);

/*
 * Removes the stale inject directories in the directory open as TMPFD
 * (leftover_sweep: ours, mode 0700 or 0711, not a symbolic link, creator
 * gone). Returns how many. Any thread.
 */
int inject_dir_sweep(int tmpfd);

/* The same for our own /tmp, at start-up. */
int inject_dir_sweep_tmp(void);

/*
 * Another pmt-top loading the agent into TARGET right now: the creator of
 * an inject directory for TARGET in TARGET's /tmp that is alive, is not
 * us, runs as "pmt-top" and lives in our pid namespace; the directory is
 * owned by root, by us or by the target's user. Returns its pid, or 0.
 * A hint for waiting, never a reason to trust anything.
 */
pid_t inject_dir_peer(pid_t target);

#endif
