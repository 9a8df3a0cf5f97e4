/*
 * sock.h - where agent sockets live and how the client connects to one.
 *
 * Implements "Where the socket lives" and the client's peer check from
 * docs/protocol.md. The agent (Python) applies the same directory rules, so a
 * change here needs the same change in pmt_agent.
 *
 * Errors: -1 with a one-line sentence in err (and errno set as noted).
 * Thread-safe apart from reading the environment.
 */
#ifndef PMT_IPC_SOCK_H
#define PMT_IPC_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Writes the runtime directory into buf:
 *   1. $PMT_TOP_RUNTIME_DIR when set and non-empty (must be absolute);
 *   2. else $XDG_RUNTIME_DIR/pmt-top when XDG_RUNTIME_DIR is set, absolute,
 *      and a directory owned by the effective uid;
 *   3. else /tmp/pmt-top-<euid>.
 * With create, a missing directory is created with mode 0700 (its parent must
 * exist). The directory is then opened with O_NOFOLLOW|O_DIRECTORY and
 * refused when it is a symlink, not a directory, owned by another uid, or
 * accessible by group or others. Returns 0, or -1 with errno ENOENT when the
 * directory does not exist and create is false, EPERM for a refused
 * directory, EINVAL for a relative PMT_TOP_RUNTIME_DIR, ENAMETOOLONG when buf
 * is too small, or the failing call's errno. Except for EINVAL and
 * ENAMETOOLONG, buf holds the chosen path even on failure (for messages).
 */
int sock_runtime_dir(char *buf, size_t buflen, bool create, char *err, size_t errlen);

/*
 * Writes <runtime dir>/<pid>.sock into buf (sock_runtime_dir() with the same
 * create flag, same errors). Fails with ENAMETOOLONG when the path would not
 * fit a Unix socket address.
 */
int sock_path_for_pid(pid_t pid, bool create, char *buf, size_t buflen, char *err, size_t errlen);

/*
 * Connects to the Unix stream socket at path. The returned fd is non-blocking
 * and close-on-exec; the caller owns it. When expect_pid > 0 the server's pid
 * (SO_PEERCRED) must equal it, else the fd is closed and -1 returned with
 * errno EPERM: "socket /x belongs to pid 99, not 123". A missing socket gives
 * ENOENT ("no agent is listening for pid 123 (socket /x missing)"), a socket
 * nobody accepts on gives ECONNREFUSED; waits at most SOCK_CONNECT_TIMEOUT_MS
 * for a full accept queue to drain (then ETIMEDOUT).
 */
#define SOCK_CONNECT_TIMEOUT_MS 2000
int sock_connect(const char *path, pid_t expect_pid, char *err, size_t errlen);

/*
 * The pid of the process at the other end of a connected Unix socket
 * (SO_PEERCRED: the process that created the listening socket, for a client).
 * Returns 0 for a peer in a pid namespace this process cannot see, or -1
 * with errno on failure.
 */
pid_t sock_peer_pid(int fd);

#endif
