/*
 * msg.h - protocol messages: encoding requests, decoding what the agent sends.
 *
 * Pure functions over cJSON (docs/protocol.md, "Messages"). msg_decode()
 * checks the envelope of every frame from the agent strictly and classifies
 * it; msg_decode_hello(), msg_decode_status(), msg_decode_functions(), the
 * msg_decode_profile_*() family and the heap walks' msg_decode_types() and
 * msg_decode_why() turn results into C structs. The largest
 * results (top, snapshot) are decoded by the snapshot module (snapshot.h)
 * straight from the cJSON object msg_decode() hands back.
 *
 * Errors: functions returning int give 0 on success and -1 on failure with a
 * one-line sentence in err (always NUL-terminated when errlen > 0). No
 * function here keeps state; all are safe to call from any thread.
 */
#ifndef PMT_IPC_MSG_H
#define PMT_IPC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ipc/proto.h"

/* Largest request id and largest integer field: what a double holds exactly. */
#define MSG_ID_MAX ((uint64_t)9007199254740991) /* 2^53 - 1 */
#define MSG_INT_MAX MSG_ID_MAX

/*
 * Encodes {"id":ID,"cmd":"NAME","args":ARGS}\n and returns it as a malloc'd,
 * NUL-terminated string (free() it); *len (if not NULL) gets its length,
 * newline included. args may be NULL (no "args" member) or a cJSON object; it
 * is only read, never freed. Fails (NULL + err) for an id above MSG_ID_MAX, a
 * cmd outside enum proto_cmd, args that are not an object, or a frame longer
 * than PROTO_MAX_REQUEST. Numbers in args are printed by cJSON, which may
 * round integers above 2^50 (no protocol argument comes close).
 */
char *msg_encode_request(uint64_t id, enum proto_cmd cmd, const cJSON *args, size_t *len,
			 char *err, size_t errlen);

enum msg_kind {
	MSG_REPLY_OK,    /* {"id": N, "ok": true, "result": {...}} */
	MSG_REPLY_ERROR, /* {"id": N|null, "ok": false, "error": {"code", "message"}} */
	MSG_PUSH         /* {"push": "name", "data": {...}} */
};

/*
 * One decoded frame. `root` owns the whole parsed tree; result, data,
 * error_code_name and error_message point into it and live as long as it does.
 * Release with msg_done(). To keep the result (or push data) after msg_done(),
 * take it with msg_take_result().
 */
struct msg {
	enum msg_kind kind;
	cJSON *root;
	/* replies */
	bool has_id;               /* false only for an error reply with "id": null */
	uint64_t id;               /* 0..MSG_ID_MAX when has_id */
	cJSON *result;             /* MSG_REPLY_OK: the "result" object */
	int error_code;            /* MSG_REPLY_ERROR: enum proto_err, or -1 for a code
				    * this build does not know (then see the name) */
	const char *error_code_name; /* MSG_REPLY_ERROR: the code as sent */
	const char *error_message;   /* MSG_REPLY_ERROR: the message as sent */
	/* pushes */
	enum proto_push push;      /* MSG_PUSH: which push */
	cJSON *data;               /* MSG_PUSH: the "data" object */
};

/*
 * Parses one frame (line[0..len), without its newline; it need not be
 * NUL-terminated) and validates the envelope:
 * - exactly one JSON object, nothing after it but whitespace;
 * - a reply has "id" (an integer 0..MSG_ID_MAX; null allowed only when
 *   ok is false), a boolean "ok", and either "result" (an object, ok true) or
 *   "error" (an object with string "code" and string "message", ok false);
 * - a push has "push" (a name from PROTO_PUSH_LIST) and "data" (an object);
 * - no other members at the top level or in "error".
 * Unknown error codes are accepted (error_code -1) so the agent's message still
 * reaches the user. On success fills *out (release with msg_done()) and
 * returns 0; on failure *out is left empty (root NULL) and err says why.
 */
int msg_decode(const char *line, size_t len, struct msg *out, char *err, size_t errlen);

/*
 * A quick look at a frame, for replies whose result is wanted as text (a
 * snapshot of 300k groups is 20 MB of text and ten times that as a cJSON
 * tree). True when the frame is exactly {"id": N, "ok": true, "result":
 * {...}}: those three members once each, in any order, keys without
 * escapes, N an integer 0..MSG_ID_MAX in plain digits. Then *ID is N and
 * line[*OFF, *OFF + *LEN) is the result object. Its content is not checked,
 * only where it ends (strings and brackets followed): whoever reads it
 * checks it. False for anything else, which msg_decode() then reads and
 * judges. Reads nothing outside line[0, len); allocates nothing.
 */
bool msg_peek_result(const char *line, size_t len, uint64_t *id, size_t *off, size_t *rlen);

/* Frees the tree (NULL-safe on an empty or already released msg). */
void msg_done(struct msg *m);

/*
 * Detaches the result (MSG_REPLY_OK) or the push data (MSG_PUSH) from m and
 * returns it; the caller owns it (cJSON_Delete). Returns NULL for an error
 * reply or when already taken. m stays valid for msg_done().
 */
cJSON *msg_take_result(struct msg *m);

/* The hello result (docs/protocol.md, "hello"). Strings are malloc'd. */
struct msg_hello {
	int protocol;
	char *agent;          /* agent version, e.g. "0.1.0" */
	long pid;
	long ppid;
	char *python;         /* e.g. "3.11.7" */
	char *implementation; /* e.g. "cpython" */
	char *executable;
	char *argv;           /* argv joined with single spaces ("" when empty) */
	size_t argc;
	double started;       /* Unix seconds */
	bool native;
	char **capabilities;  /* ncapabilities strings, as sent */
	size_t ncapabilities;
};

/*
 * Decodes a hello result object. Every documented member is required and
 * type/range checked (protocol >= 1, pid 1..INT32_MAX, ppid 0..INT32_MAX,
 * started a finite number >= 0, argv and capabilities arrays of strings);
 * members this build does not know are ignored so newer agents can add some.
 * On success fills *out (release with msg_hello_done()); on failure *out is
 * zeroed and err names the member and what was wrong.
 */
int msg_decode_hello(const cJSON *result, struct msg_hello *out, char *err, size_t errlen);
void msg_hello_done(struct msg_hello *h);

/* True when the hello result listed capability `name`. */
bool msg_hello_has_capability(const struct msg_hello *h, const char *name);

/* Largest number of GC generations a status result may report. */
#define MSG_GC_MAX 4

struct msg_gc_array {
	size_t n;               /* generations reported, 1..MSG_GC_MAX */
	int64_t v[MSG_GC_MAX];
};

/* Longest calls_mode and unavailability reason kept (longer ones are cut). */
#define MSG_PROFILE_MODE_MAX 24
#define MSG_PROFILE_ERROR_MAX 240

/*
 * The sampled profiler's status (docs/protocol.md, "profile_start"): the
 * result of profile_start/profile_stop, the "profile" member of profile and
 * profile_tree results, and the shorter summary in status pushes. Plain data
 * (no pointers): copy it freely. Byte estimates the agent sends as floats
 * are kept as doubles.
 */
struct msg_profile_status {
	bool available;             /* false: the extension is missing (see error) */
	char error[MSG_PROFILE_ERROR_MAX]; /* why unavailable, "" otherwise */
	bool running;
	uint64_t interval;          /* mean bytes between samples; 1 = exact */
	bool exact;
	uint64_t samples;           /* sampled blocks alive */
	uint64_t stacks;            /* distinct stacks kept */
	uint64_t memory;            /* what the profiler holds in the target, bytes */
	double live_bytes;          /* estimated live bytes of sampled blocks */
	double live_malloc_bytes;   /* of which in blocks over 512 B (from malloc);
	                             * -1 when the agent does not say */
	uint64_t dropped_samples;   /* not kept: max_samples reached */
	bool calls;                 /* call counting is on */
	uint64_t lost_hooks;        /* times the hook was removed and put back */
	/* Its native hooks ("native"; absent from older agents: off, 0) */
	bool native_on;
	uint64_t native_entries;    /* GOT entries pointing to them */
	double native_live_bytes;   /* part of live_bytes that native code allocated */
	/* The rest is in the full status only (has_detail), not in status pushes. */
	bool has_detail;
	int nframe;                 /* 1..128 */
	uint64_t max_samples, max_stacks;
	uint64_t dropped_stacks;
	double dropped_bytes;       /* estimate of bytes not attributed (caps hit) */
	uint64_t total_samples;     /* blocks sampled since start, freed ones too */
	double nogil_bytes;         /* allocated without the GIL: not attributed */
	double live_blocks;
	double elapsed;             /* seconds since start, 0 when stopped */
	double started;             /* Unix seconds, 0 when stopped */
	int hooks_installed, hooks_on_top; /* 0..3 allocator domains each */
	char calls_mode[MSG_PROFILE_MODE_MAX]; /* "" when call counting is off */
	uint64_t functions_counted, dropped_calls, call_stacks, call_stack_bytes;
};

/*
 * Decodes a profiler status object. {"available": false, ...} (the
 * extension is missing; "error" a string or absent) gives available false
 * and nothing else. Otherwise running, interval (1..2^30), exact, samples,
 * stacks, memory, live_bytes (a number >= 0), dropped_samples, calls and
 * lost_hooks are required (the status push's summary); when "nframe" is
 * present the object is a full status and every other documented member is
 * required too (calls_mode a string or null). Unknown members are ignored.
 * Returns 0, or -1 with *out zeroed and err naming the member.
 */
int msg_decode_profile_status(const cJSON *obj, struct msg_profile_status *out, char *err,
			      size_t errlen);

/* status.clients: what the agent does for its clients (docs/protocol.md, "Limits"). */
struct msg_clients {
	uint64_t connections, max_connections;
	uint64_t buffered;          /* bytes held in the connections' buffers */
	uint64_t answered, dropped, busy, timeouts, refused;
};

/* What glibc's malloc holds (status.memory.malloc, trim's malloc_before and
 * malloc_after), bytes. */
struct msg_malloc {
	uint64_t arena;             /* taken from the system for the heaps */
	uint64_t in_use, free;      /* in those heaps */
	uint64_t mmapped;           /* in blocks mapped on their own */
	uint64_t mmapped_blocks;
	uint64_t top_pad;           /* trimmable top of the main heap */
};

/* What pymalloc holds (status.memory.pymalloc), bytes but for arenas. */
struct msg_pymalloc {
	uint64_t arenas, arena_bytes;
	uint64_t allocated;         /* in allocated blocks */
	uint64_t available;         /* in free blocks of used pools */
	uint64_t unused_pools;      /* in pools with no block in use */
};

#define MSG_MEMORY_WHY_MAX 200

/* status.memory: the allocators' figures, each with why it is missing. */
struct msg_memory {
	double time;                /* Unix seconds when taken */
	double cost;                /* seconds taking them took in the target */
	bool has_malloc, has_pymalloc;
	struct msg_malloc malloc;
	struct msg_pymalloc pymalloc;
	char malloc_why[MSG_MEMORY_WHY_MAX];   /* display-safe; "" when has_malloc */
	char pymalloc_why[MSG_MEMORY_WHY_MAX];
};

/* Decodes a malloc object; every member is required. Returns 0 or -1. */
int msg_decode_malloc(const cJSON *obj, const char *what, struct msg_malloc *out, char *err,
		      size_t errlen);

/* The trim result (docs/protocol.md, "trim"). */
struct msg_trim {
	bool returned;              /* glibc gave some memory back */
	double seconds;             /* what malloc_trim took */
	struct msg_malloc before, after;
};

/* Decodes a trim result; every member is required. Returns 0 or -1. */
int msg_decode_trim(const cJSON *result, struct msg_trim *out, char *err, size_t errlen);

/* The status result and the status push (docs/protocol.md, "status"). */
struct msg_status {
	double time;                /* Unix seconds */
	bool tracing;
	int nframe;                 /* 0..65535 */
	bool started_by_agent;
	uint64_t traced_current;    /* bytes; 0 when not tracing */
	uint64_t traced_peak;
	uint64_t tracemalloc_memory;
	struct msg_gc_array gc_counts;
	struct msg_gc_array gc_thresholds;
	bool has_gc_objects;        /* false while the agent sends null */
	struct msg_gc_array gc_objects;
	struct msg_gc_array gc_collections;
	uint64_t threads;
	bool has_profile;           /* false when "profile" is null or absent */
	struct msg_profile_status profile;
	bool has_clients;           /* false when "clients" is null or absent (older agents) */
	struct msg_clients clients;
	bool has_memory;            /* false when "memory" is absent (older agents) */
	struct msg_memory memory;
};

/*
 * Decodes a status object (result or push data). All members are required
 * ("gc_objects" may be null); integers must be whole numbers 0..MSG_INT_MAX,
 * gc arrays hold 1..MSG_GC_MAX such integers, time is a finite number >= 0.
 * "profile" (the sampled profiler's summary) is optional and may be null;
 * when it is an object it is decoded with msg_decode_profile_status().
 * Unknown members are ignored. Returns 0, or -1 with err naming the member.
 */
int msg_decode_status(const cJSON *obj, struct msg_status *out, char *err, size_t errlen);

/* One thread's share of a function's counts. */
struct msg_function_thread {
	char *name;
	int64_t calls, net, gross;
};

/* One row of the functions table (docs/functions.md). */
struct msg_function {
	char *name, *file;
	int line;
	int64_t calls, outer;       /* all calls; outermost ones (not recursive) */
	int64_t net, max, gross, mean; /* bytes; net, max and mean may be negative */
	bool has_rss;               /* RSS per call was measured for it */
	int64_t rss_net, rss_max, rss_calls;
	struct msg_function_thread *threads;
	size_t nthreads;
};

/* The functions result, and the status of functions_start/stop/reset. */
struct msg_functions {
	bool running, native;
	char *mode, *accounting;    /* NULL while no engine ran */
	char *error;                /* NULL, or why the tracer could not run */
	double elapsed;             /* seconds */
	bool has_table;             /* a functions result (with rows) */
	size_t total;               /* functions seen, of which nrows sent */
	struct msg_function *rows;
	size_t nrows;
};

/*
 * Decodes a functions result or a tracer status strictly: every member the
 * front ends use is required and type/range checked ("mode", "accounting"
 * and "error" may be null; "rss" may be null or absent); unknown members are
 * ignored. On success fills *out (release with msg_functions_done()); on
 * failure *out is empty and err names the member.
 */
int msg_decode_functions(const cJSON *result, struct msg_functions *out, char *err, size_t errlen);
void msg_functions_done(struct msg_functions *f);

/* How the rows of a `profile` reply with key function are sorted. */
enum msg_profile_sort {
	MSG_PROFILE_SORT_OWN,
	MSG_PROFILE_SORT_TOTAL,
	MSG_PROFILE_SORT_RATE,
	MSG_PROFILE_SORT_CALLS,
	MSG_PROFILE_SORT_RETAINED,
	MSG_PROFILE_SORT_LARGEST,
	MSG_PROFILE_SORT_COUNT
};

/* Wire name of a sort ("own"...), or NULL out of range. */
const char *msg_profile_sort_name(enum msg_profile_sort sort);
/* The sort for a wire name, or -1 for an unknown name (or NULL). */
int msg_profile_sort_from_name(const char *name);

/* One row of a `profile` reply with key function. Strings are malloc'd. */
struct msg_profile_row {
	char *file;
	char *function;             /* qualified name, e.g. "Cache.load" */
	int first_line;             /* the def line, 0..INT32_MAX */
	int line;                   /* the line of its largest own stack; -1 unknown */
	uint64_t own_size, own_count;     /* allocated in it directly, still alive */
	uint64_t total_size, total_count; /* in it or its callees, still alive */
	uint64_t alloc;             /* bytes allocated since start (estimate) */
	uint64_t alloc_rate;        /* bytes/s since the previous profile request */
	bool has_calls;             /* call counting on: the next three are set */
	uint64_t calls, retained_per_call, largest_call;
	bool native;                /* what native code called from it allocated
	                             * ("native": true; absent: false) */
};

/* The result of `profile` with key function (docs/protocol.md). */
struct msg_profile_functions {
	double time;                /* Unix seconds */
	enum msg_profile_sort sort;
	uint64_t interval;          /* the profiler's sampling interval, bytes */
	size_t functions;           /* functions seen, of which nrows sent */
	double took_ms;             /* wall time the agent spent on it */
	double cpu_ms;              /* CPU time its thread spent on it; -1 unknown (older agents) */
	struct msg_profile_status profile;
	struct msg_profile_row *rows;
	size_t nrows;
};

/*
 * Decodes a `profile` result with key function strictly: time, sort,
 * source ("sampled"), interval, functions, took_ms, profile and rows are
 * required, cpu_ms is optional (absent or null: -1); in a row every documented member is, sizes being integers
 * 0..MSG_INT_MAX, and calls, retained_per_call and largest_call are either
 * all null (no call counting) or all such integers. Unknown members are
 * ignored. On success fills *out (release with msg_profile_functions_done());
 * on failure *out is empty and err names the member (with the row index).
 */
int msg_decode_profile_functions(const cJSON *result, struct msg_profile_functions *out,
				 char *err, size_t errlen);
void msg_profile_functions_done(struct msg_profile_functions *f);

/* A function in a profile_tree path: [file, function, first_line]. */
struct msg_profile_frame {
	char *file, *function;
	int first_line;
};

/* One row of a profile_tree result. */
struct msg_profile_node {
	char *file, *function;
	int first_line;
	uint64_t total_size, total_count; /* live bytes and blocks under it */
	bool self;                  /* bytes allocated in the path's last function itself */
};

/* The result of `profile_tree` (docs/protocol.md). Strings are malloc'd. */
struct msg_profile_tree {
	double time;
	struct msg_profile_frame *path; /* outermost first; npath 0 = the entry points */
	size_t npath;
	uint64_t interval;
	uint64_t total_size, total_count; /* everything under the path */
	struct msg_profile_status profile;
	struct msg_profile_node *rows;
	size_t nrows;
};

/*
 * Decodes a `profile_tree` result strictly: time, path (an array of
 * [string, string, integer] triples), source ("sampled"), interval,
 * total_size, total_count, profile and rows (each with file, function,
 * first_line, total_size, total_count and a boolean self) are required.
 * Unknown members are ignored. On success fills *out (release with
 * msg_profile_tree_done()); on failure *out is empty and err says why.
 */
int msg_decode_profile_tree(const cJSON *result, struct msg_profile_tree *out, char *err,
			    size_t errlen);
void msg_profile_tree_done(struct msg_profile_tree *t);

/*
 * The heap walks, `types` and `why` (docs/protocol.md). Every string in them
 * is the target's (a class may be called anything): the decoders keep
 * display-safe copies (strsafe.h) of at most MSG_HEAP_TEXT_MAX - 1 bytes,
 * cut between whole characters, and refuse replies past these caps.
 */
#define MSG_HEAP_TEXT_MAX 4096
#define MSG_TYPES_ROWS_MAX 100000
#define MSG_WHY_CHAINS_MAX 64
#define MSG_WHY_STEPS_MAX 64
#define MSG_WHY_HOLDERS_MAX 64

/* One row of `types`: the live objects of one type the gc tracks. */
struct msg_type_row {
	char *type;                 /* "module.QualName", "dict" for builtins */
	uint64_t count;
	uint64_t size;              /* bytes, each object's C __sizeof__ */
};

/* The `types` result. */
struct msg_types {
	struct msg_type_row *rows;  /* largest size first, as sent */
	size_t nrows;
	uint64_t tracked;           /* objects the gc tracks */
	uint64_t tracked_bytes;     /* their total size */
	uint64_t allocated_blocks;  /* sys.getallocatedblocks() */
	bool has_traced;            /* tracemalloc was on: traced is set */
	uint64_t traced;            /* bytes tracemalloc traces */
	bool complete;              /* false: the walk stopped at its budget */
	double pause_max;           /* longest time the GIL was held at once, s */
	double seconds;             /* wall time of the walk */
	uint64_t slices;            /* times the walk let other threads run */
};

/*
 * Decodes a `types` result strictly: rows (at most MSG_TYPES_ROWS_MAX, each
 * with type, count and size), tracked, tracked_bytes, allocated_blocks,
 * traced (an integer or null), complete, pause_max, seconds and slices are
 * required; unknown members are ignored. On success fills *out (release
 * with msg_types_done()); on failure *out is empty and err names the member.
 */
int msg_decode_types(const cJSON *result, struct msg_types *out, char *err, size_t errlen);
void msg_types_done(struct msg_types *t);

/* Where a chain of references starts. */
enum msg_why_root_kind {
	MSG_WHY_ROOT_NONE,          /* no root found (see the chain's end) */
	MSG_WHY_ROOT_MODULE,        /* a module's globals: name */
	MSG_WHY_ROOT_CLASS,         /* a class's attributes: name */
	MSG_WHY_ROOT_LOCAL,         /* a local variable name of function in thread */
};

struct msg_why_root {
	enum msg_why_root_kind kind;
	char *name;                 /* NULL for MSG_WHY_ROOT_NONE */
	char *thread, *function;    /* MSG_WHY_ROOT_LOCAL only, else NULL */
};

/* One object on a chain, and how the one before refers to it. */
struct msg_why_step {
	char *via;                  /* "global _CACHE", "index 3", ...; NULL: not said */
	char *type;
	uint64_t size;              /* bytes */
	bool has_len;               /* a dict, list, tuple, set or frozenset: len is set */
	uint64_t len;
};

/* The shortest chain found from a root to one sampled object. */
struct msg_why_chain {
	struct msg_why_root root;
	char *end;                  /* why no root was found ("" when not said);
	                             * NULL on a chain with a root */
	struct msg_why_step *steps; /* from the root's first object to the sample */
	size_t nsteps;              /* 1..MSG_WHY_STEPS_MAX */
};

/* What one holder keeps alive on its own (an estimate). */
struct msg_why_retained {
	uint64_t bytes, objects;
	bool truncated;             /* stopped at the agent's object limit or budget */
	bool estimate;
};

/* The chains grouped by their first object under the root. */
struct msg_why_holder {
	struct msg_why_root root;   /* never MSG_WHY_ROOT_NONE */
	uint64_t samples;           /* chains that go through it */
	struct msg_why_step holder;
	bool has_retained;          /* false when the budget ran out first */
	struct msg_why_retained retained;
};

/* The `why` result. */
struct msg_why {
	uint64_t matched;           /* objects of the type or line found */
	struct msg_why_chain *chains; /* one per sample */
	size_t nchains;
	struct msg_why_holder *holders; /* most samples first */
	size_t nholders;
	double pause_max, seconds;  /* as in struct msg_types */
	uint64_t slices;
};

/*
 * Decodes a `why` result strictly: matched, chains (at most
 * MSG_WHY_CHAINS_MAX, no more than matched), holders (at most
 * MSG_WHY_HOLDERS_MAX, their samples adding up to no more than the chains),
 * pause_max, seconds and slices are required. A root is null or an object
 * with "root" module or class and a "name", or local with "thread",
 * "function" and "name"; a chain without root needs a string "end"; a
 * chain has 1..MSG_WHY_STEPS_MAX steps, each with "via" (a string or null),
 * "type", "size" and an optional "len"; a holder's "retained" may be absent
 * or null. Unknown members are ignored. On success fills *out (release with
 * msg_why_done()); on failure *out is empty and err names the member.
 */
int msg_decode_why(const cJSON *result, struct msg_why *out, char *err, size_t errlen);
void msg_why_done(struct msg_why *w);

/* Wire name of a root kind ("module", ...), or NULL for none or out of range. */
const char *msg_why_root_name(enum msg_why_root_kind kind);

/*
 * What one request cost the target, as the agent's reply says (`top`,
 * `snapshot`, `functions`, `profile`): the wall time the agent spent on it
 * and, from agents that measure it, the CPU time its thread spent on it.
 * Each is -1 when the reply does not say.
 */
struct msg_cost {
	double took_ms;
	double cpu_ms;
};

/*
 * Reads "took_ms" and "cpu_ms" of a result; both are optional (absent or
 * null: -1), and one present must be a finite number >= 0. `what` names the
 * result in err ("top result"). On failure *out is all -1.
 */
int msg_decode_cost(const cJSON *result, const char *what, struct msg_cost *out, char *err,
		    size_t errlen);

/* What the request cost the target in ms: cpu_ms when known, else took_ms;
 * negative when the reply said neither. */
double msg_cost_ms(const struct msg_cost *c);

/*
 * Helpers for decoders elsewhere (top/snapshot), with the same wording:
 * fetch member `name` of obj as a whole number in [min, max] (both within
 * 0..MSG_INT_MAX or negative down to -MSG_INT_MAX), a finite number, a bool or a
 * string (borrowed). `what` names the object in the message ("top result").
 * A missing member is an error.
 */
int msg_get_int(const cJSON *obj, const char *what, const char *name, int64_t min, int64_t max,
		int64_t *out, char *err, size_t errlen);
int msg_get_number(const cJSON *obj, const char *what, const char *name, double *out,
		   char *err, size_t errlen);
int msg_get_bool(const cJSON *obj, const char *what, const char *name, bool *out,
		 char *err, size_t errlen);
int msg_get_string(const cJSON *obj, const char *what, const char *name, const char **out,
		   char *err, size_t errlen);

#endif
