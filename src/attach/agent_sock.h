/*
 * agent_sock.h - where the agent of a given process listens.
 *
 * The agent names its socket after its own view of the world: its runtime
 * directory (from its environment and uid) and its pid as it sees it. When
 * pmt-top runs as the same user in the same namespaces that is simply
 * <our runtime dir>/<pid>.sock; when root attaches to another user's process,
 * or to a process in a container, the socket is found through the target's
 * environment, uid, NSpid and /proc/PID/root. When the shared-/tmp default
 * was taken by another user, the agent listens in /tmp/pmt-top-<uid>.<random>
 * instead, and that is looked for too. A candidate counts only in a directory
 * that the target's uid or root owns and nobody else may write (sock_connect
 * checks the same again, and that its maker is the target).
 */
#ifndef PMT_ATTACH_AGENT_SOCK_H
#define PMT_ATTACH_AGENT_SOCK_H

#include <stddef.h>
#include <sys/types.h>

/* Fill path with the socket of pid's agent: the first trusted candidate.
 * Returns 0, or -1 with a sentence in ERR: where it looked, or which socket
 * was refused and why (a spoof in a directory another user controls). */
int agent_sock_find(pid_t pid, char *path, size_t len, char *err, size_t errlen);

#endif
