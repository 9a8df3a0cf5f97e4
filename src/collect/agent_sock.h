/*
 * agent_sock.h - where the agent of a given process listens.
 *
 * The agent names its socket after its own view of the world: its runtime
 * directory (from its environment and uid) and its pid as it sees it. When
 * pmt-top runs as the same user in the same namespaces that is simply
 * <our runtime dir>/<pid>.sock; when root attaches to another user's process,
 * or to a process in a container, the socket is found through the target's
 * environment, uid, NSpid and /proc/PID/root. SO_PEERCRED reports the peer's
 * pid in our namespace, so the peer check stays "is it PID".
 */
#ifndef PMT_COLLECT_AGENT_SOCK_H
#define PMT_COLLECT_AGENT_SOCK_H

#include <stddef.h>
#include <sys/types.h>

/* Fill path with the socket of pid's agent: the first candidate that exists,
 * else our own <runtime dir>/<pid>.sock (so errors name the usual place).
 * Returns 0, or -1 with a reason when no path can be formed. */
int agent_sock_find(pid_t pid, char *path, size_t len, char *err, size_t errlen);

#endif
