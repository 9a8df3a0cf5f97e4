/*
 * snapshot.h - a snapshot of the target's live memory held by pmt-top.
 *
 * The agent keeps nothing: a snapshot is the `snapshot` (or `top`) result
 * object of docs/protocol.md, from tracemalloc or from the sampled profiler
 * (its `source`), validated and stored here in a compact form, so
 * that it outlives the target process, can be saved to a file, loaded back,
 * regrouped to a coarser key and diffed (snapdiff.h).
 *
 * Storage: groups live in one array; their frames and every string (file
 * names, source lines) live in a per-snapshot arena, and strings are interned,
 * so 100k groups that share a few hundred file names cost a few MiB.
 * Pointers into a snapshot (frames, file names, lines) stay valid until
 * snapshot_free(); adding groups never moves them.
 *
 * Threads: a snapshot has no internal locking. Any number of threads may read
 * a snapshot that nobody modifies.
 *
 * Errors: functions that can fail take `char *err, size_t errlen` and write
 * one line (no trailing newline) saying what went wrong and, where useful,
 * what to do. Out of memory aborts (xalloc.h).
 */
#ifndef PMT_SNAPSHOT_SNAPSHOT_H
#define PMT_SNAPSHOT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "ipc/proto.h"

/* Value of the "format" and "version" fields of a snapshot file. */
#define SNAPSHOT_FORMAT "pmt-top-snapshot"
#define SNAPSHOT_VERSION 1

/* Largest integer a snapshot accepts (2^53 - 1: exact in a double). */
#define SNAPSHOT_MAX_INT 9007199254740991.0
/* Largest nframe tracemalloc accepts. */
#define SNAPSHOT_MAX_NFRAME 65535
/* Largest snapshot file snapshot_load() reads (a reply's size limit). */
#define SNAPSHOT_MAX_FILE ((size_t)PROTO_MAX_REPLY)

struct snapshot_frame {
	const char *filename; /* interned in the snapshot's pool, never NULL */
	uint32_t lineno;      /* 0 for the filename key */
};

struct snapshot_group {
	uint64_t size;                /* bytes, <= 2^53 - 1 */
	uint64_t count;               /* blocks */
	const struct snapshot_frame *frames; /* most recent call first */
	uint32_t nframes;             /* >= 1; exactly 1 unless key is traceback */
	const char *line;             /* source line of frames[0], "" if unknown */
	bool native;                  /* allocated by native code called from frames[0]
	                               * (the profiler's native hooks): part of the key */
	uint64_t key_hash;            /* snapshot_group_hash(), kept by the snapshot */
};

struct snapshot_pool;

/* Where a snapshot's figures come from (its "source" field). */
enum snapshot_source {
	SNAPSHOT_SOURCE_TRACEMALLOC, /* every block, exact (a file without "source") */
	SNAPSHOT_SOURCE_SAMPLED,     /* the sampled profiler: estimates */
	SNAPSHOT_SOURCE_COUNT_
};

/* Largest sampling interval the profiler accepts (bytes). */
#define SNAPSHOT_MAX_INTERVAL 1073741824.0

/*
 * What the process's RSS was made of when the snapshot was taken
 * (docs/memory.md; session/composition.h fills it, in this order). A file
 * keeps "rss" and one "rss_<name>" number per part that was known; a file
 * without them (older, or no smaps) has none. Only "rest" may be negative.
 */
#define SNAPSHOT_MEM_PARTS 10
struct snapshot_memory {
	bool has;              /* "rss" was known */
	uint64_t rss;          /* what the parts add up to */
	uint32_t known;        /* bit i: part[i] was known */
	int64_t part[SNAPSHOT_MEM_PARTS];
};
/* "python", "slack", "native", "malloc_free", "heaps", "anon", "stacks",
 * "files", "shmem", "rest": the file's names (after "rss_"). */
const char *snapshot_mem_name(int part);
/* "Python objects", "Python slack", "native heap", ...: for people. */
const char *snapshot_mem_label(int part);

struct snapshot {
	double time;             /* Unix seconds when the agent took it */
	uint32_t pid;            /* target pid */
	enum proto_key key;      /* how groups are keyed */
	bool cumulative;         /* every frame of a trace counted (not traceback) */
	uint32_t nframe;         /* tracemalloc's frame limit, 1..65535 */
	uint64_t traced_current; /* tracemalloc.get_traced_memory() */
	uint64_t traced_peak;
	uint64_t total_size;     /* over traces that passed the filters */
	uint64_t total_count;
	uint64_t ntraces;        /* traces before filtering (sampled: samples kept) */
	enum snapshot_source source;
	uint64_t interval;       /* sampled: mean bytes between samples, 1 = every
	                          * block; 0 for tracemalloc */
	char *label;             /* owned; "" when none, never NULL */
	bool cut;                /* the agent kept only the largest groups (a `top`
	                          * reply asked for one more than it shows): there
	                          * are more than ngroups; never saved */
	size_t all_groups;       /* a cut snapshot: how many groups the agent had
	                          * (its reply's "ngroups"); 0 when it did not say */
	struct snapshot_memory mem; /* the RSS and its parts at the time */

	struct snapshot_group *groups; /* in the order they were added/loaded */
	size_t ngroups;
	size_t groups_cap;

	struct snapshot_pool *pool; /* private: arena + intern table */
};

/* Name of a key ("lineno"...) or NULL if out of range. */
const char *snapshot_key_name(enum proto_key key);
/* Parse a key name; returns 0 and sets *key, or -1 for an unknown name. */
int snapshot_key_from_name(const char *name, enum proto_key *key);

/* "tracemalloc" or "sampled" (the wire names), NULL if out of range. */
const char *snapshot_source_name(enum snapshot_source source);

/*
 * How the figures were measured, for headers and lists: "tracemalloc",
 * "sampled, 1 per 4 KiB", "sampled, every block". Returns buf.
 */
char *snapshot_source_text(char *buf, size_t len, enum snapshot_source source, uint64_t interval);

/* True when a and b were measured the same way (source and interval):
 * a diff of two that are not compares estimates with other figures. */
bool snapshot_same_source(const struct snapshot *a, const struct snapshot *b);

/*
 * An empty snapshot with the given key. cumulative must be false for
 * PROTO_KEY_TRACEBACK (the caller's bug otherwise: abort). nframe is clamped
 * to 1..SNAPSHOT_MAX_NFRAME. Other header fields start at 0 / "" (source
 * tracemalloc).
 * Free with snapshot_free().
 */
struct snapshot *snapshot_new(enum proto_key key, bool cumulative, uint32_t nframe);

/* Free a snapshot and everything it owns. NULL is a no-op. */
void snapshot_free(struct snapshot *snap);

/* Replace the label (copied). NULL means "". */
void snapshot_set_label(struct snapshot *snap, const char *label);

/*
 * Append a group. frames (nframes >= 1, most recent first) and line (NULL
 * means "") are copied and interned; the snapshot does not keep the caller's
 * pointers. No validation of sizes or of duplicate keys: use this for data
 * already known to be valid (snapshot_from_json validates). Returns the
 * stored group, valid until the next snapshot_add_group() call (the group
 * array may move; frames and strings do not).
 */
struct snapshot_group *snapshot_add_group(struct snapshot *snap, uint64_t size,
					  uint64_t count,
					  const struct snapshot_frame *frames,
					  uint32_t nframes, const char *line);

/* Marks a group native (its key changes: the hash is computed again). */
void snapshot_group_set_native(struct snapshot_group *g, bool native);

/*
 * Build a snapshot from a cJSON object: either the result object of a
 * `snapshot`/`top` reply, or the object of a snapshot file (with "format",
 * "version" and optionally "label"). Validation is strict: a missing field,
 * a wrong type, a negative number, a non-integral number where an integer is
 * expected, an integer above 2^53 - 1, a frame that is not a
 * [filename, lineno] pair, an unknown key name, cumulative with traceback, a
 * group whose frame count does not suit the key, or two groups with the same
 * key each fail with a message naming the field, e.g.
 * "groups[12].size is negative". "source" is optional ("tracemalloc" when
 * absent); "sampled" requires "interval" (1 to 2^30), which no other source
 * may have. Unknown extra fields are ignored.
 * Returns NULL on error. The cJSON tree is not kept.
 */
struct snapshot *snapshot_from_json(const cJSON *obj, char *err, size_t errlen);

/*
 * Parse and validate a snapshot from bytes (the text of a snapshot file, or
 * a reply's result). name prefixes every error: "NAME: truncated JSON at byte
 * 1234", "NAME: not a pmt-top snapshot (format is \"x\")", "NAME: version 7
 * is newer than this pmt-top understands (1)". Rejects bytes that are not
 * UTF-8 and input larger than SNAPSHOT_MAX_FILE.
 */
struct snapshot *snapshot_parse(const char *buf, size_t len, const char *name,
				char *err, size_t errlen);

/*
 * The two halves of snapshot_parse(), for tests. snapshot_parse_fast()
 * reads strict JSON in one pass without building a tree; for anything else
 * (a syntax error, a reply wrapper, control characters in a string, deep
 * nesting; a string ends at a \u0000, as in cJSON) it sets *gave_up and
 * returns NULL, and
 * snapshot_parse() then takes snapshot_parse_cjson() (cJSON tree, then
 * snapshot_from_json()), which decides and words the error. When the fast
 * reader does not give up, both return the same snapshot or the same error.
 */
struct snapshot *snapshot_parse_fast(const char *buf, size_t len, const char *name,
				     char *err, size_t errlen, bool *gave_up);
struct snapshot *snapshot_parse_cjson(const char *buf, size_t len, const char *name,
				      char *err, size_t errlen);

/*
 * snapshot_parse() of a buffer the caller gives up: as it is read, the
 * pages of BUF already read are given back to the system (they then read
 * as zeros), so that a big text costs about the larger of itself and its
 * snapshot, not the sum (300k groups: 22 MB of text, 19 MB of snapshot).
 * BUF may be anywhere in a heap block; only whole pages inside
 * [BUF, BUF+LEN) are touched. Text the one-pass reader leaves to cJSON is
 * given to it when nothing was given back yet; otherwise *GONE is set and
 * the error says where the text stopped being readable: a caller that can
 * read the text again (a file) does, and calls snapshot_parse().
 */
struct snapshot *snapshot_parse_consume(char *buf, size_t len, const char *name, char *err,
					size_t errlen, bool *gone);

/*
 * Load a snapshot file. Only a regular file is read: a FIFO (a shell's
 * <(zcat x.json.gz) too), a device, a socket or a directory is refused at once,
 * before it is read, so a FIFO without a writer cannot block.
 * Errors name the file as given in path and the problem (missing, not a
 * regular file, empty, not JSON, wrong format or version, bad field).
 * Returns NULL on error.
 */
struct snapshot *snapshot_load(const char *path, char *err, size_t errlen);

/*
 * The file representation as a cJSON object ("format", "version", "label",
 * then the result fields and every group). The caller owns it
 * (cJSON_Delete). Integers are stored as doubles (exact up to 2^53).
 */
cJSON *snapshot_to_json(const struct snapshot *snap);

/*
 * The canonical text of a snapshot file: one header line of fields, then one
 * line per group, in snapshot order; ends with a newline. Deterministic:
 * saving a loaded file gives the same bytes. If max_groups is not
 * SIZE_MAX only the first max_groups groups are written. Returns a string
 * the caller frees; *len (if not NULL) gets its length.
 */
char *snapshot_serialize(const struct snapshot *snap, size_t max_groups, size_t *len);

/*
 * Save atomically: create a new temporary file in the same directory
 * (O_EXCL, O_NOFOLLOW), fsync it, rename it over path, fsync the directory.
 * On any error the temporary file is removed and an existing file at path is
 * left untouched. The result is always a file of ours with mode 0600
 * (snapshots name the target's files and show its source lines), never the
 * mode or the inode of a file that was there: pmt-top runs as root, and a
 * file pre-created by another user must not turn into a world-writable file
 * of root's. Returns 0 or -1 with err set (one sentence; another user's file
 * in a sticky directory is refused with that reason).
 */
int snapshot_save(const struct snapshot *snap, const char *path, char *err, size_t errlen);

/*
 * A new snapshot grouped by a coarser key: traceback -> lineno (by the most
 * recent frame) or filename; lineno -> filename; the same key -> a copy.
 * Sizes and counts are summed; cumulative is kept (a cumulative lineno
 * snapshot regroups exactly into a cumulative filename one). Groups of the
 * result are sorted by size, largest first (snapshot_sort()). Finer keys
 * cannot be recovered: NULL with an error.
 */
struct snapshot *snapshot_regroup(const struct snapshot *snap, enum proto_key key,
				  char *err, size_t errlen);

/* Sort groups by size desc, then count desc, then location (deterministic). */
void snapshot_sort(struct snapshot *snap);

/*
 * Group keys across snapshots: a hash of the frame sequence (file name
 * contents and line numbers), and equality of two groups' frame sequences.
 * The groups may come from different snapshots.
 */
uint64_t snapshot_group_hash(const struct snapshot_group *g);
bool snapshot_group_equal(const struct snapshot_group *a, const struct snapshot_group *b);

/*
 * Order two groups' locations the way tracemalloc orders Traceback objects:
 * frames compared oldest call first, file name (code point order) then line
 * number; a prefix sorts first. Returns <0, 0, >0.
 */
int snapshot_group_location_cmp(const struct snapshot_group *a,
				const struct snapshot_group *b);

/*
 * Print a snapshot for `pmt-top snapshot`: the largest top_n groups
 * (0 = all) as a table (size, count, average, location, line), or with json
 * the file representation limited to those groups (docs/snapshots.md). A
 * cut snapshot's table says "more than N groups".
 * Returns 0, or -1 if writing failed (errno set).
 */
int snapshot_print(FILE *fp, const struct snapshot *snap, size_t top_n, bool json);

/*
 * Write the location of g as the table printers show it: "file:line: source"
 * (or "file" for the filename key), then for a traceback one line per older
 * frame, "from file:line", starting in column indent. Ends with a newline.
 */
void snapshot_print_location(FILE *fp, const struct snapshot_group *g,
			     enum proto_key key, int indent);

/* Write s as a JSON string literal (quoted, escaped; invalid UTF-8 -> U+FFFD). */
void snapshot_fput_json_string(FILE *fp, const char *s);
/* Write g's frames as a JSON array of [filename, lineno] pairs. */
void snapshot_fput_json_frames(FILE *fp, const struct snapshot_group *g);


#endif
