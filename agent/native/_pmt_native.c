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

#include <stdint.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PMT_NATIVE_API 1

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

static PyMethodDef native_methods[] = {
	{"group_tracebacks", group_tracebacks, METH_O, group_tracebacks_doc},
	{"give_back", give_back, METH_NOARGS, give_back_doc},
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
	if (PyModule_AddIntConstant(m, "API_VERSION", PMT_NATIVE_API) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
