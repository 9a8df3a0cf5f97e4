/*
 * _pmt_native.c - the agent's optional C accelerator for grouping traces.
 *
 * tracemalloc._get_traces() returns one (domain, size, traceback, ...) tuple
 * per live block; tracemalloc interns tracebacks, so identical tracebacks are
 * the same tuple object. group_tracebacks() sums size and count per traceback
 * object in one pass over the list, in a private pointer-keyed hash table that
 * allocates no Python objects per trace (the Python equivalent allocates int
 * objects that tracemalloc then traces, which is what makes
 * Snapshot.statistics() slow while tracing). The caller folds the few unique
 * tracebacks into lineno/filename/traceback groups in Python.
 *
 * Only the public C API is used; it builds against CPython 3.8 to 3.14 and
 * does not link libpython (symbols resolve from the host interpreter).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PMT_NATIVE_API 2

struct group_slot {
	PyObject *key;		/* borrowed: the traces list keeps it alive */
	unsigned long long size;
	Py_ssize_t count;
};

struct group_table {
	struct group_slot *slots;
	size_t mask;
	size_t used;
};

static size_t group_hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return (size_t)x;
}

static int group_table_init(struct group_table *t, size_t cap)
{
	t->slots = calloc(cap, sizeof(*t->slots));
	if (t->slots == NULL)
		return -1;
	t->mask = cap - 1;
	t->used = 0;
	return 0;
}

/* Double the table; returns -1 when out of memory (old table kept). */
static int group_table_grow(struct group_table *t)
{
	size_t cap = (t->mask + 1) * 2;
	struct group_slot *slots = calloc(cap, sizeof(*slots));
	size_t i;

	if (slots == NULL)
		return -1;
	for (i = 0; i <= t->mask; i++) {
		struct group_slot *s = &t->slots[i];
		size_t j;

		if (s->key == NULL)
			continue;
		j = group_hash(s->key) & (cap - 1);
		while (slots[j].key != NULL)
			j = (j + 1) & (cap - 1);
		slots[j] = *s;
	}
	free(t->slots);
	t->slots = slots;
	t->mask = cap - 1;
	return 0;
}

static struct group_slot *group_table_find(struct group_table *t, PyObject *key)
{
	size_t j = group_hash(key) & t->mask;

	for (;;) {
		struct group_slot *s = &t->slots[j];

		if (s->key == key || s->key == NULL)
			return s;
		j = (j + 1) & t->mask;
	}
}

PyDoc_STRVAR(group_tracebacks_doc,
"group_tracebacks(traces) -> list of (traceback, size, count)\n\n"
"Sum size and count per traceback object over tracemalloc._get_traces()\n"
"items (tuples whose item 1 is the size and item 2 the traceback).");

static PyObject *group_tracebacks(PyObject *self, PyObject *arg)
{
	struct group_table t;
	PyObject *seq, *result = NULL;
	Py_ssize_t n, i;
	size_t j;

	(void)self;
	seq = PySequence_Fast(arg, "group_tracebacks() needs a sequence of traces");
	if (seq == NULL)
		return NULL;
	if (group_table_init(&t, 1024) < 0) {
		Py_DECREF(seq);
		return PyErr_NoMemory();
	}
	n = PySequence_Fast_GET_SIZE(seq);
	for (i = 0; i < n; i++) {
		PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
		PyObject *size_obj, *tb;
		struct group_slot *s;
		unsigned long long size;

		if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 3) {
			PyErr_SetString(PyExc_TypeError, "a trace must be a tuple of at least 3 items");
			goto done;
		}
		size_obj = PyTuple_GET_ITEM(item, 1);
		tb = PyTuple_GET_ITEM(item, 2);
		if (!PyLong_CheckExact(size_obj)) {
			PyErr_SetString(PyExc_TypeError, "a trace's size must be an int");
			goto done;
		}
		size = PyLong_AsUnsignedLongLong(size_obj);
		if (size == (unsigned long long)-1 && PyErr_Occurred())
			goto done;
		s = group_table_find(&t, tb);
		if (s->key == NULL) {
			if ((t.used + 1) * 2 > t.mask + 1) {
				if (group_table_grow(&t) < 0) {
					PyErr_NoMemory();
					goto done;
				}
				s = group_table_find(&t, tb);
			}
			s->key = tb;
			t.used++;
		}
		s->size += size;
		s->count++;
	}
	result = PyList_New((Py_ssize_t)t.used);
	if (result == NULL)
		goto done;
	i = 0;
	for (j = 0; j <= t.mask; j++) {
		struct group_slot *s = &t.slots[j];
		PyObject *tuple;

		if (s->key == NULL)
			continue;
		tuple = Py_BuildValue("(OKn)", s->key, s->size, s->count);
		if (tuple == NULL) {
			Py_CLEAR(result);
			goto done;
		}
		PyList_SET_ITEM(result, i, tuple);
		i++;
	}
done:
	free(t.slots);
	Py_DECREF(seq);
	return result;
}

/* ---- fold: grouping, selection and JSON encoding in slices ----
 *
 * fold_new() takes the list of _get_traces() and the grouping request and
 * returns a capsule; fold_step() does at most one slice of work (about
 * SLICE_NS) and returns True once the groups are folded, the trace list is
 * emptied and the rows are chosen. The caller loops in Python
 * (`while not fold_step(f): pass`), so between two slices the interpreter
 * can hand the GIL to a thread that asked for it: the target's threads wait
 * one slice, not the whole request. fold_heads() then gives the first frame
 * of each chosen row (the caller reads their source lines), and
 * fold_encode() writes the rows as the JSON array the protocol sends, in
 * slices as well.
 *
 * Everything is kept in malloc'd tables: tracemalloc does not trace them,
 * so none of this work shows up in the target's own statistics. Group keys
 * hold a reference to the object they name (a frame tuple, a filename, a
 * traceback), so the trace list can be freed before the rows are encoded.
 */

#define SLICE_NS 2000000LL	/* one slice of work holds the GIL about this long */
#define CHECK_EVERY 1024	/* items between two looks at the clock */

enum fold_key { KEY_LINENO, KEY_FILENAME, KEY_TRACEBACK };
enum fold_phase { PH_SUM, PH_FOLD, PH_FREE, PH_SELECT, PH_SORT, PH_DONE };

struct file_slot {
	PyObject *name;		/* borrowed while the traces live; only compared by address */
	signed char keep;	/* -1 unknown, 0 or 1 */
	signed char agent;
};

struct key_slot {
	PyObject *obj;		/* strong: frame tuple, filename or traceback tuple; NULL = free */
	PyObject *file;		/* borrowed from obj: the filename compared */
	long lineno;
	Py_hash_t hash;
	unsigned long long size;
	unsigned long long count;
};

struct fold {
	PyObject *traces;	/* strong; emptied in PH_FREE */
	PyObject *keep;		/* callable(filename) -> bool, or NULL */
	PyObject *agent;	/* str prefix of the agent's files, or NULL */
	enum fold_key key;
	int cumulative;
	Py_ssize_t limit;	/* rows to choose; <= 0 for every group */
	enum fold_phase phase;
	Py_ssize_t pos;
	struct group_table tbs;	/* traceback -> size, count (PH_SUM, PH_FOLD) */
	size_t tbpos;
	struct file_slot *files;
	size_t files_mask, files_used;
	struct key_slot *keys;
	size_t keys_mask, keys_used;
	unsigned long long total_size, total_count;
	size_t *rows;		/* chosen key slots: a min-heap, then in order */
	size_t nrows, want;
	size_t kpos;		/* PH_SELECT: next key slot; PH_SORT: heap size */
	size_t enc_pos;		/* rows encoded so far */
	char *out;
	size_t out_len, out_cap;
};

static PyObject *unknown_tb;	/* (("<unknown>", 0),) for traces without frames */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fold_free(struct fold *f)
{
	size_t i;

	if (f->keys != NULL)
		for (i = 0; i <= f->keys_mask; i++)
			Py_XDECREF(f->keys[i].obj);
	free(f->keys);
	free(f->files);
	free(f->tbs.slots);
	free(f->rows);
	free(f->out);
	Py_XDECREF(f->traces);
	Py_XDECREF(f->keep);
	Py_XDECREF(f->agent);
	free(f);
}

static void fold_capsule_free(PyObject *cap)
{
	struct fold *f = PyCapsule_GetPointer(cap, "pmt_fold");

	if (f != NULL)
		fold_free(f);
}

static struct fold *fold_get(PyObject *cap)
{
	return PyCapsule_GetPointer(cap, "pmt_fold");
}

/* The slot of a filename in the per-request cache of filter answers. */
static struct file_slot *file_find(struct fold *f, PyObject *name)
{
	size_t j;

	if ((f->files_used + 1) * 2 > f->files_mask + 1) {
		size_t cap = (f->files_mask + 1) * 2, i;
		struct file_slot *n = calloc(cap, sizeof(*n));

		if (n == NULL)
			return NULL;
		for (i = 0; i <= f->files_mask; i++) {
			if (f->files[i].name == NULL)
				continue;
			j = group_hash(f->files[i].name) & (cap - 1);
			while (n[j].name != NULL)
				j = (j + 1) & (cap - 1);
			n[j] = f->files[i];
		}
		free(f->files);
		f->files = n;
		f->files_mask = cap - 1;
	}
	j = group_hash(name) & f->files_mask;
	while (f->files[j].name != NULL && f->files[j].name != name)
		j = (j + 1) & f->files_mask;
	if (f->files[j].name == NULL) {
		f->files[j].name = name;
		f->files[j].keep = -1;
		f->files[j].agent = -1;
		f->files_used++;
	}
	return &f->files[j];
}

/* 1 if the user's filters keep traces whose latest frame is in name, 0 if
 * not, -1 on error. */
static int file_kept(struct fold *f, PyObject *name)
{
	struct file_slot *s;
	PyObject *r;
	int ok;

	if (f->keep == NULL)
		return 1;
	s = file_find(f, name);
	if (s == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	if (s->keep >= 0)
		return s->keep;
	r = PyObject_CallFunctionObjArgs(f->keep, name, NULL);
	if (r == NULL)
		return -1;
	ok = PyObject_IsTrue(r);
	Py_DECREF(r);
	if (ok < 0)
		return -1;
	s->keep = (signed char)ok;
	return ok;
}

/* 1 if name is one of the agent's own files, 0 if not, -1 on error. */
static int file_is_agent(struct fold *f, PyObject *name)
{
	struct file_slot *s;
	Py_ssize_t r;

	if (f->agent == NULL || !PyUnicode_Check(name))
		return 0;
	s = file_find(f, name);
	if (s == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	if (s->agent >= 0)
		return s->agent;
	r = PyUnicode_Tailmatch(name, f->agent, 0, PY_SSIZE_T_MAX, -1);
	if (r < 0)
		return -1;
	s->agent = (signed char)(r > 0);
	return s->agent;
}

/* A frame is a (filename, lineno) tuple; anything else is refused. */
static int frame_parts(PyObject *frame, PyObject **file, long *lineno)
{
	if (!PyTuple_Check(frame) || PyTuple_GET_SIZE(frame) != 2) {
		PyErr_SetString(PyExc_TypeError, "a frame must be a (filename, lineno) tuple");
		return -1;
	}
	*file = PyTuple_GET_ITEM(frame, 0);
	if (!PyUnicode_Check(*file)) {
		PyErr_SetString(PyExc_TypeError, "a frame's filename must be a str");
		return -1;
	}
	*lineno = PyLong_AsLong(PyTuple_GET_ITEM(frame, 1));
	if (*lineno == -1 && PyErr_Occurred())
		return -1;
	return 0;
}

static int keys_grow(struct fold *f)
{
	size_t cap = (f->keys_mask + 1) * 2, i, j;
	struct key_slot *n = calloc(cap, sizeof(*n));

	if (n == NULL)
		return -1;
	for (i = 0; i <= f->keys_mask; i++) {
		if (f->keys[i].obj == NULL)
			continue;
		j = (size_t)f->keys[i].hash & (cap - 1);
		while (n[j].obj != NULL)
			j = (j + 1) & (cap - 1);
		n[j] = f->keys[i];
	}
	free(f->keys);
	f->keys = n;
	f->keys_mask = cap - 1;
	return 0;
}

static int same_file(PyObject *a, PyObject *b)
{
	if (a == b)
		return 1;
	return PyUnicode_Compare(a, b) == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
}

/* Add size and count to the group of obj (a frame, a filename or a
 * traceback, per f->key). Returns 0, or -1 with an exception set. */
static int key_add(struct fold *f, PyObject *obj, unsigned long long size, unsigned long long count)
{
	PyObject *file = NULL;
	long lineno = 0;
	Py_hash_t h;
	size_t j;

	if (f->key == KEY_LINENO) {
		if (frame_parts(obj, &file, &lineno) < 0)
			return -1;
		h = PyObject_Hash(file);
		if (h == -1)
			return -1;
		h = (Py_hash_t)((size_t)h * 1000003u ^ (size_t)lineno);
	} else if (f->key == KEY_FILENAME) {
		file = obj;
		h = PyObject_Hash(file);
		if (h == -1)
			return -1;
	} else {
		h = PyObject_Hash(obj);
		if (h == -1)
			return -1;
	}
	if ((f->keys_used + 1) * 2 > f->keys_mask + 1 && keys_grow(f) < 0) {
		PyErr_NoMemory();
		return -1;
	}
	for (j = (size_t)h & f->keys_mask;; j = (j + 1) & f->keys_mask) {
		struct key_slot *s = &f->keys[j];
		int eq;

		if (s->obj == NULL) {
			Py_INCREF(obj);
			s->obj = obj;
			s->file = file;
			s->lineno = lineno;
			s->hash = h;
			s->size = size;
			s->count = count;
			f->keys_used++;
			return 0;
		}
		if (s->hash != h)
			continue;
		if (f->key == KEY_TRACEBACK)
			eq = s->obj == obj ? 1 : PyObject_RichCompareBool(s->obj, obj, Py_EQ);
		else if (s->lineno != lineno)
			eq = 0;
		else
			eq = same_file(s->file, file);
		if (eq < 0)
			return -1;
		if (eq) {
			s->size += size;
			s->count += count;
			return 0;
		}
	}
}

/* One distinct traceback: filters, totals, and its share of the groups. */
static int fold_traceback(struct fold *f, PyObject *tb, unsigned long long size, unsigned long long count)
{
	PyObject *file;
	long lineno;
	Py_ssize_t i, n;
	int r;

	if (!PyTuple_Check(tb)) {
		PyErr_SetString(PyExc_TypeError, "a traceback must be a tuple");
		return -1;
	}
	if (PyTuple_GET_SIZE(tb) == 0)
		tb = unknown_tb;
	n = PyTuple_GET_SIZE(tb);
	for (i = 0; i < n; i++) {
		if (frame_parts(PyTuple_GET_ITEM(tb, i), &file, &lineno) < 0)
			return -1;
		r = file_is_agent(f, file);
		if (r != 0)
			return r < 0 ? -1 : 0;	/* the agent's own allocation: not counted */
	}
	r = file_kept(f, PyTuple_GET_ITEM(PyTuple_GET_ITEM(tb, 0), 0));
	if (r <= 0)
		return r;
	f->total_size += size;
	f->total_count += count;
	if (f->key == KEY_TRACEBACK)
		return key_add(f, tb, size, count);
	if (!f->cumulative) {
		PyObject *frame = PyTuple_GET_ITEM(tb, 0);
		return key_add(f, f->key == KEY_LINENO ? frame : PyTuple_GET_ITEM(frame, 0), size, count);
	}
	for (i = 0; i < n; i++) {
		PyObject *frame = PyTuple_GET_ITEM(tb, i);

		if (key_add(f, f->key == KEY_LINENO ? frame : PyTuple_GET_ITEM(frame, 0), size, count) < 0)
			return -1;
	}
	return 0;
}

/* keys[i] comes after keys[j] in the rows' order (largest size, then
 * count, first): a min-heap on it keeps the limit largest at its root's
 * expense, and popping it leaves them largest first. */
static int row_less(const struct key_slot *keys, size_t i, size_t j)
{
	if (keys[i].size != keys[j].size)
		return keys[i].size < keys[j].size;
	return keys[i].count < keys[j].count;
}

static void heap_down(const struct key_slot *keys, size_t *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i, t;

		if (l < n && row_less(keys, h[l], h[m]))
			m = l;
		if (r < n && row_less(keys, h[r], h[m]))
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

/* One slice of the current phase; 1 when everything up to the selection is
 * done, 0 to be called again, -1 with an exception set. */
static int fold_slice(struct fold *f)
{
	long long deadline = now_ns() + SLICE_NS;
	Py_ssize_t n;

	switch (f->phase) {
	case PH_SUM:
		n = PyList_GET_SIZE(f->traces);
		while (f->pos < n) {
			PyObject *item = PyList_GET_ITEM(f->traces, f->pos), *size_obj, *tb;
			struct group_slot *s;
			unsigned long long size;

			if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 3) {
				PyErr_SetString(PyExc_TypeError, "a trace must be a tuple of at least 3 items");
				return -1;
			}
			size_obj = PyTuple_GET_ITEM(item, 1);
			tb = PyTuple_GET_ITEM(item, 2);
			if (!PyLong_CheckExact(size_obj)) {
				PyErr_SetString(PyExc_TypeError, "a trace's size must be an int");
				return -1;
			}
			size = PyLong_AsUnsignedLongLong(size_obj);
			if (size == (unsigned long long)-1 && PyErr_Occurred())
				return -1;
			s = group_table_find(&f->tbs, tb);
			if (s->key == NULL) {
				if ((f->tbs.used + 1) * 2 > f->tbs.mask + 1) {
					if (group_table_grow(&f->tbs) < 0) {
						PyErr_NoMemory();
						return -1;
					}
					s = group_table_find(&f->tbs, tb);
				}
				s->key = tb;
				f->tbs.used++;
			}
			s->size += size;
			s->count++;
			if (++f->pos % CHECK_EVERY == 0 && now_ns() > deadline)
				return 0;
		}
		f->phase = PH_FOLD;
		return 0;
	case PH_FOLD:
		while (f->tbpos <= f->tbs.mask) {
			struct group_slot *s = &f->tbs.slots[f->tbpos++];

			if (s->key == NULL)
				continue;
			if (fold_traceback(f, s->key, s->size, (unsigned long long)s->count) < 0)
				return -1;
			if (f->tbpos % CHECK_EVERY == 0 && now_ns() > deadline)
				return 0;
		}
		/* The tracebacks are borrowed from the traces: forget them first. */
		free(f->tbs.slots);
		f->tbs.slots = NULL;
		f->phase = PH_FREE;
		return 0;
	case PH_FREE:
		/* Freeing a million traces at once would hold the GIL as long as
		 * copying them did: drop them from the end, a chunk at a time. */
		while ((n = PyList_GET_SIZE(f->traces)) > 0) {
			Py_ssize_t from = n > 16384 ? n - 16384 : 0;

			if (PyList_SetSlice(f->traces, from, n, NULL) < 0)
				return -1;
			if (now_ns() > deadline)
				return 0;
		}
		f->phase = PH_SELECT;
		return 0;
	case PH_SELECT:
		if (f->rows == NULL) {
			f->want = f->limit > 0 && (size_t)f->limit < f->keys_used ? (size_t)f->limit : f->keys_used;
			f->rows = malloc((f->want ? f->want : 1) * sizeof(*f->rows));
			if (f->rows == NULL) {
				PyErr_NoMemory();
				return -1;
			}
		}
		while (f->kpos <= f->keys_mask) {
			size_t i = f->kpos++;

			if (f->keys[i].obj == NULL || f->want == 0)
				continue;
			if (f->nrows < f->want) {
				f->rows[f->nrows++] = i;
				if (f->nrows == f->want)
					for (size_t k = f->want / 2 + 1; k-- > 0;)
						heap_down(f->keys, f->rows, f->nrows, k);
			} else if (row_less(f->keys, f->rows[0], i)) {
				f->rows[0] = i;
				heap_down(f->keys, f->rows, f->nrows, 0);
			}
			if (f->kpos % CHECK_EVERY == 0 && now_ns() > deadline)
				return 0;
		}
		f->kpos = f->nrows;
		f->phase = PH_SORT;
		return 0;
	case PH_SORT:
		/* Pop the smallest to the end: the rows end up largest first. */
		while (f->kpos > 1) {
			size_t t = f->rows[0];

			f->kpos--;
			f->rows[0] = f->rows[f->kpos];
			f->rows[f->kpos] = t;
			heap_down(f->keys, f->rows, f->kpos, 0);
			if (f->kpos % CHECK_EVERY == 0 && now_ns() > deadline)
				return 0;
		}
		f->phase = PH_DONE;
		return 1;
	case PH_DONE:
		return 1;
	}
	return 1;
}

PyDoc_STRVAR(fold_new_doc,
"fold_new(traces, key, cumulative, keep, agent, limit) -> fold\n\n"
"Start grouping tracemalloc._get_traces() items by key ('lineno', 'filename'\n"
"or 'traceback'), every frame counting when cumulative. keep(filename) ->\n"
"bool filters on the latest frame (None keeps all); traces with any frame\n"
"in a file starting with the str agent are left out, totals included. limit\n"
"rows are chosen, the largest by size then count (None: every group).\n"
"fold_step() does the work and empties traces.");

static PyObject *fold_new(PyObject *self, PyObject *args)
{
	PyObject *traces, *keep, *agent, *limit_obj, *cap;
	const char *key;
	int cumulative;
	struct fold *f;

	(void)self;
	if (!PyArg_ParseTuple(args, "O!spOOO:fold_new", &PyList_Type, &traces, &key, &cumulative, &keep,
			      &agent, &limit_obj))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return PyErr_NoMemory();
	if (strcmp(key, "lineno") == 0)
		f->key = KEY_LINENO;
	else if (strcmp(key, "filename") == 0)
		f->key = KEY_FILENAME;
	else if (strcmp(key, "traceback") == 0 && !cumulative)
		f->key = KEY_TRACEBACK;
	else {
		free(f);
		PyErr_SetString(PyExc_ValueError, "key must be lineno, filename or traceback "
				"(not cumulative)");
		return NULL;
	}
	f->cumulative = cumulative;
	if (limit_obj != Py_None) {
		f->limit = PyLong_AsSsize_t(limit_obj);
		if (f->limit == -1 && PyErr_Occurred()) {
			free(f);
			return NULL;
		}
	}
	if ((agent != Py_None && !PyUnicode_Check(agent)) || (keep != Py_None && !PyCallable_Check(keep))) {
		free(f);
		PyErr_SetString(PyExc_TypeError, "keep must be callable or None, agent a str or None");
		return NULL;
	}
	Py_INCREF(traces);
	f->traces = traces;
	if (keep != Py_None) {
		Py_INCREF(keep);
		f->keep = keep;
	}
	if (agent != Py_None) {
		Py_INCREF(agent);
		f->agent = agent;
	}
	f->files_mask = 255;
	f->keys_mask = 1023;
	f->files = calloc(f->files_mask + 1, sizeof(*f->files));
	f->keys = calloc(f->keys_mask + 1, sizeof(*f->keys));
	if (f->files == NULL || f->keys == NULL || group_table_init(&f->tbs, 1024) < 0) {
		fold_free(f);
		return PyErr_NoMemory();
	}
	cap = PyCapsule_New(f, "pmt_fold", fold_capsule_free);
	if (cap == NULL)
		fold_free(f);
	return cap;
}

PyDoc_STRVAR(fold_step_doc,
"fold_step(fold) -> bool\n\n"
"Do one slice (a few ms) of the grouping; True once the rows are chosen.");

static PyObject *fold_step(PyObject *self, PyObject *cap)
{
	struct fold *f = fold_get(cap);
	int r;

	(void)self;
	if (f == NULL)
		return NULL;
	r = fold_slice(f);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

PyDoc_STRVAR(fold_info_doc,
"fold_info(fold) -> (groups, total_size, total_count)\n\n"
"The number of groups and the totals of the traces that passed the filters.");

static PyObject *fold_info(PyObject *self, PyObject *cap)
{
	struct fold *f = fold_get(cap);

	(void)self;
	if (f == NULL)
		return NULL;
	return Py_BuildValue("(nKK)", (Py_ssize_t)f->keys_used, f->total_size, f->total_count);
}

static int fold_ready(struct fold *f)
{
	if (f->phase != PH_DONE) {
		PyErr_SetString(PyExc_RuntimeError, "fold_step() has not finished");
		return -1;
	}
	return 0;
}

/* The frames of a row, most recent first, as a tuple of (filename, lineno). */
static PyObject *row_frames(struct fold *f, const struct key_slot *s)
{
	if (f->key == KEY_TRACEBACK) {
		PyObject *tb = PyTuple_GET_SIZE(s->obj) ? s->obj : unknown_tb;

		Py_INCREF(tb);
		return tb;
	}
	if (f->key == KEY_LINENO)
		return PyTuple_Pack(1, s->obj);
	return Py_BuildValue("((Oi))", s->obj, 0);
}

PyDoc_STRVAR(fold_rows_doc,
"fold_rows(fold) -> list of [size, count, frames]\n\n"
"The chosen rows, largest first (what grouping.top(grouping.group()) gives).");

static PyObject *fold_rows(PyObject *self, PyObject *cap)
{
	struct fold *f = fold_get(cap);
	PyObject *list;
	size_t i;

	(void)self;
	if (f == NULL || fold_ready(f) < 0)
		return NULL;
	list = PyList_New((Py_ssize_t)f->nrows);
	if (list == NULL)
		return NULL;
	for (i = 0; i < f->nrows; i++) {
		const struct key_slot *s = &f->keys[f->rows[i]];
		PyObject *frames = row_frames(f, s), *row;

		if (frames == NULL) {
			Py_DECREF(list);
			return NULL;
		}
		row = Py_BuildValue("[KKN]", s->size, s->count, frames);
		if (row == NULL) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, row);
	}
	return list;
}

PyDoc_STRVAR(fold_heads_doc,
"fold_heads(fold) -> list of (filename, lineno)\n\n"
"The latest frame of each chosen row, in row order.");

static PyObject *fold_heads(PyObject *self, PyObject *cap)
{
	struct fold *f = fold_get(cap);
	PyObject *list;
	size_t i;

	(void)self;
	if (f == NULL || fold_ready(f) < 0)
		return NULL;
	list = PyList_New((Py_ssize_t)f->nrows);
	if (list == NULL)
		return NULL;
	for (i = 0; i < f->nrows; i++) {
		const struct key_slot *s = &f->keys[f->rows[i]];
		PyObject *head;

		if (f->key == KEY_TRACEBACK)
			head = PyTuple_GET_SIZE(s->obj) ? PyTuple_GET_ITEM(s->obj, 0)
							: PyTuple_GET_ITEM(unknown_tb, 0);
		else if (f->key == KEY_LINENO)
			head = s->obj;
		else
			head = NULL;
		if (head != NULL)
			Py_INCREF(head);
		else if ((head = Py_BuildValue("(Oi)", s->obj, 0)) == NULL) {
			Py_DECREF(list);
			return NULL;
		}
		PyList_SET_ITEM(list, (Py_ssize_t)i, head);
	}
	return list;
}

/* ---- JSON output into a malloc'd buffer ---- */

static int out_reserve(struct fold *f, size_t more)
{
	size_t cap;
	char *p;

	if (f->out_len + more <= f->out_cap)
		return 0;
	cap = f->out_cap ? f->out_cap : 65536;
	while (cap < f->out_len + more)
		cap *= 2;
	p = realloc(f->out, cap);
	if (p == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	f->out = p;
	f->out_cap = cap;
	return 0;
}

static int out_put(struct fold *f, const char *s, size_t n)
{
	if (out_reserve(f, n) < 0)
		return -1;
	memcpy(f->out + f->out_len, s, n);
	f->out_len += n;
	return 0;
}

static int out_ull(struct fold *f, unsigned long long v)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%llu", v);

	return out_put(f, buf, (size_t)n);
}

/* A JSON string as json.dumps(ensure_ascii=False) writes it; a str that is
 * not valid UTF-8 (lone surrogates) has those replaced by '?', as the reply
 * encoder's final encode("utf-8", "replace") does. */
static int out_str(struct fold *f, PyObject *str)
{
	static const char hex[] = "0123456789abcdef";
	PyObject *tmp = NULL;
	const char *s;
	Py_ssize_t n, i;
	int r = -1;

	s = PyUnicode_AsUTF8AndSize(str, &n);
	if (s == NULL) {
		PyErr_Clear();
		tmp = PyUnicode_AsEncodedString(str, "utf-8", "replace");
		if (tmp == NULL)
			return -1;
		s = PyBytes_AS_STRING(tmp);
		n = PyBytes_GET_SIZE(tmp);
	}
	if (out_reserve(f, (size_t)n * 6 + 2) < 0)
		goto done;
	f->out[f->out_len++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char *o = f->out + f->out_len;

		if (c == '"' || c == '\\') {
			o[0] = '\\';
			o[1] = (char)c;
			f->out_len += 2;
		} else if (c < 0x20) {
			const char *esc = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
					: c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;

			if (esc != NULL) {
				memcpy(o, esc, 2);
				f->out_len += 2;
			} else {
				memcpy(o, "\\u00", 4);
				o[4] = hex[c >> 4];
				o[5] = hex[c & 15];
				f->out_len += 6;
			}
		} else {
			o[0] = (char)c;
			f->out_len++;
		}
	}
	f->out[f->out_len++] = '"';
	r = 0;
done:
	Py_XDECREF(tmp);
	return r;
}

static int out_frame(struct fold *f, PyObject *file, long lineno)
{
	char buf[32];
	int n;

	if (out_put(f, "[", 1) < 0 || out_str(f, file) < 0)
		return -1;
	n = snprintf(buf, sizeof buf, ",%ld]", lineno);
	return out_put(f, buf, (size_t)n);
}

static int out_row(struct fold *f, const struct key_slot *s, PyObject *line)
{
	if (out_put(f, "{\"size\":", 8) < 0 || out_ull(f, s->size) < 0
	    || out_put(f, ",\"count\":", 9) < 0 || out_ull(f, s->count) < 0
	    || out_put(f, ",\"frames\":[", 11) < 0)
		return -1;
	if (f->key == KEY_TRACEBACK) {
		PyObject *tb = PyTuple_GET_SIZE(s->obj) ? s->obj : unknown_tb;
		Py_ssize_t i;

		for (i = 0; i < PyTuple_GET_SIZE(tb); i++) {
			PyObject *file;
			long lineno;

			if ((i && out_put(f, ",", 1) < 0)
			    || frame_parts(PyTuple_GET_ITEM(tb, i), &file, &lineno) < 0
			    || out_frame(f, file, lineno) < 0)
				return -1;
		}
	} else if (out_frame(f, s->file, s->lineno) < 0) {
		return -1;
	}
	if (out_put(f, "],\"line\":", 9) < 0)
		return -1;
	if (line != NULL && PyUnicode_Check(line)) {
		if (out_str(f, line) < 0)
			return -1;
	} else if (out_put(f, "\"\"", 2) < 0) {
		return -1;
	}
	return out_put(f, "}", 1);
}

PyDoc_STRVAR(fold_encode_doc,
"fold_encode(fold, lines) -> bytes or None\n\n"
"Encode one slice of the chosen rows as the protocol's JSON objects (size,\n"
"count, frames, line); lines is None or a list of str, one per row. Returns\n"
"None while rows remain (call again), then the whole JSON array.");

static PyObject *fold_encode(PyObject *self, PyObject *args)
{
	PyObject *cap, *lines, *res;
	struct fold *f;
	long long deadline = now_ns() + SLICE_NS;

	(void)self;
	if (!PyArg_ParseTuple(args, "OO:fold_encode", &cap, &lines))
		return NULL;
	f = fold_get(cap);
	if (f == NULL || fold_ready(f) < 0)
		return NULL;
	if (lines != Py_None && (!PyList_Check(lines) || (size_t)PyList_GET_SIZE(lines) != f->nrows)) {
		PyErr_SetString(PyExc_TypeError, "lines must be None or a list with one item per row");
		return NULL;
	}
	if (f->enc_pos == 0 && f->out_len == 0 && out_put(f, "[", 1) < 0)
		return NULL;
	while (f->enc_pos < f->nrows) {
		size_t i = f->enc_pos;

		if ((i && out_put(f, ",", 1) < 0)
		    || out_row(f, &f->keys[f->rows[i]], lines == Py_None ? NULL : PyList_GET_ITEM(lines, i)) < 0)
			return NULL;
		f->enc_pos++;
		if (f->enc_pos % 256 == 0 && now_ns() > deadline)
			Py_RETURN_NONE;
	}
	if (out_put(f, "]", 1) < 0)
		return NULL;
	res = PyBytes_FromStringAndSize(f->out, (Py_ssize_t)f->out_len);
	free(f->out);
	f->out = NULL;
	f->out_len = f->out_cap = 0;
	return res;
}

PyDoc_STRVAR(give_back_doc,
"give_back() -> bool or None\n\n"
"Return the C heap's free pages to the system (glibc's malloc_trim(0)), with\n"
"the GIL released. A snapshot of a million traces frees some 100 MB that\n"
"glibc would otherwise keep. True if memory was returned, None where the C\n"
"library is not glibc.");

static PyObject *give_back(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
#ifdef __GLIBC__
	int released;

	Py_BEGIN_ALLOW_THREADS
	released = malloc_trim(0);
	Py_END_ALLOW_THREADS
	return PyBool_FromLong(released);
#else
	Py_RETURN_NONE;
#endif
}

/* glibc's struct mallinfo2 (2.33+), by layout: ten size_t. Declared here so
 * that the module builds on an older C library and finds the function at
 * run time. */
struct pmt_mallinfo2 {
	size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
};

PyDoc_STRVAR(malloc_figures_doc,
"malloc_figures() -> dict or str\n\n"
"What the C library's malloc holds, from glibc's mallinfo2(), called with\n"
"the GIL released (it walks the free lists of every arena under that\n"
"arena's lock). A str says why there are no figures: the C library is not\n"
"glibc, it is older than 2.33, or another allocator replaces malloc (its\n"
"file is named).");

/* Whether FILE is the running program (a non-PIE program's call to malloc
 * makes its PLT entry the global address of malloc). */
static int is_program(const char *file)
{
	char a[4096], b[4096];
	return realpath(file, a) && realpath("/proc/self/exe", b) && strcmp(a, b) == 0;
}

static PyObject *malloc_figures(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	/* Allocators known by a symbol of their own, even linked in statically. */
	static const char *const markers[][2] = {
		{ "mallctl", "jemalloc" }, { "je_mallctl", "jemalloc" },
		{ "tc_malloc", "tcmalloc" }, { "mi_malloc", "mimalloc" },
	};
	Dl_info info;
	for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
		void *p = dlsym(RTLD_DEFAULT, markers[i][0]);
		if (p && dladdr(p, &info) && info.dli_fname)
			return PyUnicode_FromFormat("malloc is not glibc's: %s (%s) replaces it", markers[i][1],
						    info.dli_fname);
	}
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	void *malloc_libc = libc ? dlsym(libc, "malloc") : NULL;
	struct pmt_mallinfo2 (*fn)(void) = NULL;
	if (libc)
		*(void **)&fn = dlsym(libc, "mallinfo2");
	if (libc)
		dlclose(libc);
	if (malloc_libc == NULL)
		return PyUnicode_FromString("the C library is not glibc");
	void *malloc_now = dlsym(RTLD_DEFAULT, "malloc");
	if (malloc_now != malloc_libc && malloc_now && dladdr(malloc_now, &info) && info.dli_fname &&
	    !is_program(info.dli_fname))
		return PyUnicode_FromFormat("malloc is not glibc's: %s replaces it", info.dli_fname);
	if (fn == NULL)
		return PyUnicode_FromString("glibc older than 2.33 has no mallinfo2");
	struct pmt_mallinfo2 mi;
	Py_BEGIN_ALLOW_THREADS
	mi = fn();
	Py_END_ALLOW_THREADS
	return Py_BuildValue("{sKsKsKsKsKsK}", "arena", (unsigned long long)mi.arena, "in_use",
			     (unsigned long long)mi.uordblks, "free", (unsigned long long)mi.fordblks,
			     "mmapped", (unsigned long long)mi.hblkhd, "mmapped_blocks",
			     (unsigned long long)mi.hblks, "top_pad", (unsigned long long)mi.keepcost);
}

static PyMethodDef native_methods[] = {
	{"group_tracebacks", group_tracebacks, METH_O, group_tracebacks_doc},
	{"give_back", give_back, METH_NOARGS, give_back_doc},
	{"malloc_figures", malloc_figures, METH_NOARGS, malloc_figures_doc},
	{"fold_new", fold_new, METH_VARARGS, fold_new_doc},
	{"fold_step", fold_step, METH_O, fold_step_doc},
	{"fold_info", fold_info, METH_O, fold_info_doc},
	{"fold_rows", fold_rows, METH_O, fold_rows_doc},
	{"fold_heads", fold_heads, METH_O, fold_heads_doc},
	{"fold_encode", fold_encode, METH_VARARGS, fold_encode_doc},
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef native_module = {
	PyModuleDef_HEAD_INIT,
	"_pmt_native",
	"Optional C accelerator of the pmt-top agent (trace grouping).",
	-1,
	native_methods,
	NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__pmt_native(void);

PyMODINIT_FUNC PyInit__pmt_native(void)
{
	PyObject *m = PyModule_Create(&native_module);

	if (m == NULL)
		return NULL;
	if (unknown_tb == NULL)
		unknown_tb = Py_BuildValue("((si))", "<unknown>", 0);
	if (unknown_tb == NULL || PyModule_AddIntConstant(m, "API_VERSION", PMT_NATIVE_API) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
