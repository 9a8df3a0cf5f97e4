/*
 * _pmt_heap.c - the agent's heap walks (types, why) in C.
 *
 * Each function here runs in one call with the GIL held and holds no
 * reference to the application's objects once it returns (but the samples
 * it is asked for). Walking the heap from Python in slices would hold the
 * list of every object while the application's threads run: an object the
 * application lets go in between then lives on in that list, and code that
 * relies on its release at once breaks (a memoryview still exported keeps
 * `del buf[:n]` on its bytearray failing with BufferError; a file or socket
 * closes late; a __del__ runs in the agent's thread). So the list lives
 * inside one call, where no Python code runs: sizes come from the C
 * __sizeof__ of a type only (a class's Python __sizeof__ is never called),
 * comparisons are by address, and nothing allocates a tracked object while
 * the list is alive (a collection could run finalizers).
 *
 *   tally(header)                    -> [(type, count, size)]
 *   pick_type(type, n)               -> ([obj], matched)
 *   pick_line(file, line, n)         -> ([(obj, ..., hit)], matched)
 *   retained(holder, skip, max, secs, header) -> (bytes, objects, truncated)
 *
 * HEADER is what sys.getsizeof adds to a gc object's __sizeof__.
 * Only the public C API is used; it builds against CPython 3.8 to 3.14.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- a pointer-keyed open-addressing table ------------------------------- */

struct pslot {
	void *key;
	Py_ssize_t a, b;	/* per use: count and size, or an index */
	PyObject *sizeof_fn;	/* the type's C __sizeof__ to call (new reference), or NULL */
	int kind;		/* SIZE_*: how its instances are sized */
};

struct ptable {
	struct pslot *s;
	size_t mask, used;
};

static size_t phash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return (size_t)x;
}

static int ptable_init(struct ptable *t, size_t cap)
{
	t->s = calloc(cap, sizeof *t->s);
	t->mask = cap - 1;
	t->used = 0;
	return t->s ? 0 : -1;
}

/* The slot of KEY (a new one zeroed, key set); NULL when out of memory. */
static struct pslot *ptable_get(struct ptable *t, void *key)
{
	if ((t->used + 1) * 4 > (t->mask + 1) * 3) {
		size_t cap = (t->mask + 1) * 2;
		struct pslot *s = calloc(cap, sizeof *s);
		if (s == NULL)
			return NULL;
		for (size_t i = 0; i <= t->mask; i++) {
			if (t->s[i].key == NULL)
				continue;
			size_t j = phash(t->s[i].key) & (cap - 1);
			while (s[j].key != NULL)
				j = (j + 1) & (cap - 1);
			s[j] = t->s[i];
		}
		free(t->s);
		t->s = s;
		t->mask = cap - 1;
	}
	size_t j = phash(key) & t->mask;
	while (t->s[j].key != NULL && t->s[j].key != key)
		j = (j + 1) & t->mask;
	if (t->s[j].key == NULL) {
		t->s[j].key = key;
		t->used++;
	}
	return &t->s[j];
}

static struct pslot *ptable_find(const struct ptable *t, const void *key)
{
	size_t j = phash(key) & t->mask;
	while (t->s[j].key != NULL) {
		if (t->s[j].key == key)
			return &t->s[j];
		j = (j + 1) & t->mask;
	}
	return NULL;
}

/* --- a growable array of borrowed pointers ------------------------------- */

struct parr {
	PyObject **v;
	size_t n, cap;
	int failed;
};

static void parr_push(struct parr *a, PyObject *o)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		PyObject **v = realloc(a->v, cap * sizeof *v);
		if (v == NULL) {
			a->failed = 1;
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = o;
}

static int visit_push(PyObject *o, void *arg)
{
	if (o != NULL)
		parr_push(arg, o);
	return 0;
}

/* What O refers to (the gc's view), appended to A (borrowed). */
static void referents(PyObject *o, struct parr *a)
{
	traverseproc tr = Py_TYPE(o)->tp_traverse;
	if (PyObject_IS_GC(o) && tr != NULL)
		tr(o, visit_push, a);
}

static int is_tracked(PyObject *o)
{
	if (!PyObject_IS_GC(o))
		return 0;
#if PY_VERSION_HEX >= 0x03090000
	return PyObject_GC_IsTracked(o);
#else
	return _PyObject_GC_IS_TRACKED(o);
#endif
}

/* Every object the gc tracks: gc.get_objects() (new reference or NULL). */
static PyObject *all_objects(void)
{
	PyObject *gc = PyImport_ImportModule("gc");
	if (gc == NULL)
		return NULL;
	PyObject *objs = PyObject_CallMethod(gc, "get_objects", NULL);
	Py_DECREF(gc);
	if (objs != NULL && !PyList_Check(objs)) {
		Py_DECREF(objs);
		PyErr_SetString(PyExc_TypeError, "gc.get_objects() did not return a list");
		return NULL;
	}
	return objs;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How long the last walk held the GIL (seconds), for last_hold(). */
static double g_last_hold;

PyDoc_STRVAR(last_hold_doc,
"last_hold() -> seconds\n\n"
"How long the last call of this module held the GIL, from its start to its end.");

static PyObject *last_hold(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyFloat_FromDouble(g_last_hold);
}

/* --- sizes --------------------------------------------------------------- */

/* The type's __sizeof__ when it is C code (a method descriptor), or NULL;
 * a new reference. Looked up with type's own attribute lookup, whatever the
 * metaclass's __getattribute__ (it finds a method descriptor or a function
 * in the type's MRO and returns it as is). */
static PyObject *c_sizeof(PyTypeObject *tp)
{
	PyObject *name = PyUnicode_FromString("__sizeof__");
	if (name == NULL) {
		PyErr_Clear();
		return NULL;
	}
	PyObject *f = PyType_Type.tp_getattro((PyObject *)tp, name);
	Py_DECREF(name);
	if (f == NULL) {
		PyErr_Clear();
		return NULL;
	}
	if (!PyObject_TypeCheck(f, &PyMethodDescr_Type)) {
		Py_DECREF(f);
		return NULL;
	}
	return f;
}

/* object.__sizeof__: the instance's fixed and variable parts. */
static Py_ssize_t basic_size(PyObject *o)
{
	PyTypeObject *tp = Py_TYPE(o);
	Py_ssize_t n = tp->tp_basicsize;
	if (tp->tp_itemsize) {
		Py_ssize_t k = Py_SIZE(o);
		n += (k < 0 ? -k : k) * tp->tp_itemsize;
	}
	return n;
}

enum {
	SIZE_UNKNOWN,		/* not looked up yet */
	SIZE_BASIC,		/* object.__sizeof__ (or a Python __sizeof__, not called) */
	SIZE_LIST,		/* list.__sizeof__: its fixed part and its allocated slots */
	SIZE_CALL,		/* another C __sizeof__: called */
};

/* How a type's instances are sized: fills the slot's kind and sizeof_fn.
 * object.__sizeof__ and list.__sizeof__ are computed here as they compute
 * them (most objects), the others called. */
static void size_kind(struct pslot *s, PyTypeObject *tp)
{
	PyObject *fn = c_sizeof(tp);
	s->kind = SIZE_BASIC;
	if (fn == NULL)
		return;
	PyObject *base = c_sizeof(&PyBaseObject_Type), *list = c_sizeof(&PyList_Type);
	if (fn == base) {
		Py_DECREF(fn);
	} else if (fn == list) {
		s->kind = SIZE_LIST;
		Py_DECREF(fn);
	} else {
		s->kind = SIZE_CALL;
		s->sizeof_fn = fn;
	}
	Py_XDECREF(base);
	Py_XDECREF(list);
}

/* sys.getsizeof(O) without Python code, by the slot of its type. */
static Py_ssize_t size_of(PyObject *o, const struct pslot *s, Py_ssize_t header)
{
	Py_ssize_t n = -1;
	PyObject *fn = s->sizeof_fn;
	if (s->kind == SIZE_LIST)
		n = Py_TYPE(o)->tp_basicsize + ((PyListObject *)o)->allocated * (Py_ssize_t)sizeof(void *);
	else if (fn != NULL) {
		PyObject *r = PyObject_CallFunctionObjArgs(fn, o, NULL);
		if (r != NULL) {
			n = PyLong_AsSsize_t(r);
			Py_DECREF(r);
		}
		if (n < 0) {
			PyErr_Clear();
			n = -1;
		}
	}
	if (n < 0)
		n = basic_size(o);
	return n + (PyObject_IS_GC(o) ? header : 0);
}

/* The per-type cache of sizes' functions (slot->sizeof_fn). */
static Py_ssize_t size_cached(struct ptable *types, PyObject *o, Py_ssize_t header)
{
	struct pslot *s = ptable_get(types, Py_TYPE(o));
	if (s == NULL)
		return basic_size(o) + (PyObject_IS_GC(o) ? header : 0);
	if (s->kind == SIZE_UNKNOWN)
		size_kind(s, Py_TYPE(o));
	return size_of(o, s, header);
}

static void types_free(struct ptable *t)
{
	for (size_t i = 0; t->s && i <= t->mask; i++)
		Py_XDECREF(t->s[i].sizeof_fn);
	free(t->s);
	t->s = NULL;
}

/* --- tally ----------------------------------------------------------------- */

PyDoc_STRVAR(tally_doc,
"tally(header) -> [(type, count, size)]\n\n"
"Every object the gc tracks, counted and sized by type, in one call.");

static PyObject *tally_impl(PyObject *self, PyObject *arg)
{
	(void)self;
	Py_ssize_t header = PyLong_AsSsize_t(arg);
	if (header < 0 && PyErr_Occurred())
		return NULL;
	struct ptable t;
	if (ptable_init(&t, 1024) < 0)
		return PyErr_NoMemory();
	PyObject *objs = all_objects();
	if (objs == NULL) {
		free(t.s);
		return NULL;
	}
	int failed = 0;
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objs) && !failed; i++) {
		PyObject *o = PyList_GET_ITEM(objs, i);
		struct pslot *s = ptable_get(&t, Py_TYPE(o));
		if (s == NULL) {
			failed = 1;
			break;
		}
		if (s->kind == SIZE_UNKNOWN)
			size_kind(s, Py_TYPE(o));
		s->a++;
		s->b += size_of(o, s, header);
	}
	/* A type's last reference may be its instances in the list: held. */
	for (size_t i = 0; i <= t.mask; i++)
		if (t.s[i].key)
			Py_INCREF((PyObject *)t.s[i].key);
	Py_DECREF(objs);
	PyObject *out = failed ? NULL : PyList_New(0);
	for (size_t i = 0; i <= t.mask; i++) {
		if (t.s[i].key == NULL)
			continue;
		if (out != NULL) {
			PyObject *row = Py_BuildValue("(Onn)", (PyObject *)t.s[i].key, t.s[i].a, t.s[i].b);
			if (row == NULL || PyList_Append(out, row) < 0)
				Py_CLEAR(out);
			Py_XDECREF(row);
		}
		Py_DECREF((PyObject *)t.s[i].key);
	}
	types_free(&t);
	if (failed && !PyErr_Occurred())
		PyErr_NoMemory();
	return out;
}

/* --- samples ------------------------------------------------------------- */

/* Reservoir sampling, seeded: up to N of the matches, spread over them. */
struct reservoir {
	PyObject **v;		/* new references */
	Py_ssize_t n, cap, seen;
	uint64_t rng;
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void reservoir_offer(struct reservoir *r, PyObject *o)
{
	r->seen++;
	if (r->n < r->cap) {
		Py_INCREF(o);
		r->v[r->n++] = o;
		return;
	}
	uint64_t k = rng_next(&r->rng) % (uint64_t)r->seen;
	if (k < (uint64_t)r->cap) {
		Py_INCREF(o);
		Py_SETREF(r->v[k], o);
	}
}

static PyObject *reservoir_take(struct reservoir *r)
{
	PyObject *list = PyList_New(r->n);
	for (Py_ssize_t i = 0; i < r->n; i++) {
		if (list)
			PyList_SET_ITEM(list, i, r->v[i]);	/* steals */
		else
			Py_DECREF(r->v[i]);
	}
	free(r->v);
	r->v = NULL;
	if (list == NULL)
		return NULL;
	return Py_BuildValue("(Nn)", list, r->seen);
}

PyDoc_STRVAR(pick_type_doc,
"pick_type(types, n) -> ([obj], matched)\n\n"
"Up to N objects whose type is one of TYPES (a tuple; exactly), spread over\n"
"them, and how many there are.");

static PyObject *pick_type_impl(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *tps;
	Py_ssize_t n;
	if (!PyArg_ParseTuple(args, "O!n", &PyTuple_Type, &tps, &n))
		return NULL;
	if (n < 1 || n > 4096) {
		PyErr_SetString(PyExc_ValueError, "n must be from 1 to 4096");
		return NULL;
	}
	struct reservoir r = { calloc((size_t)n, sizeof(PyObject *)), 0, n, 0, 0x9E3779B97F4A7C15ull };
	if (r.v == NULL)
		return PyErr_NoMemory();
	PyObject *objs = all_objects();
	if (objs == NULL) {
		free(r.v);
		return NULL;
	}
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objs); i++) {
		PyObject *o = PyList_GET_ITEM(objs, i);
		for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(tps) && o != objs; k++)
			if ((PyObject *)Py_TYPE(o) == PyTuple_GET_ITEM(tps, k))
				reservoir_offer(&r, o);
	}
	Py_DECREF(objs);
	return reservoir_take(&r);
}

/* Whether tracemalloc's traceback of O (TB_FN: _get_object_traceback)
 * has its most recent frame at FILE:LINE (FILE the path or its end after
 * a '/'). Clears errors. */
static int allocated_at(PyObject *tb_fn, PyObject *o, const char *file, size_t flen, long line)
{
	PyObject *tb = PyObject_CallFunctionObjArgs(tb_fn, o, NULL);
	int hit = 0;
	if (tb == NULL) {
		PyErr_Clear();
		return 0;
	}
	if (PyTuple_Check(tb) && PyTuple_GET_SIZE(tb) > 0) {
		PyObject *fr = PyTuple_GET_ITEM(tb, 0);
		if (PyTuple_Check(fr) && PyTuple_GET_SIZE(fr) >= 2 && PyUnicode_Check(PyTuple_GET_ITEM(fr, 0))
		    && PyLong_Check(PyTuple_GET_ITEM(fr, 1))) {
			long ln = PyLong_AsLong(PyTuple_GET_ITEM(fr, 1));
			Py_ssize_t len;
			const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(fr, 0), &len);
			if (name == NULL || ln == -1)
				PyErr_Clear();
			else if (ln == line && (size_t)len >= flen && memcmp(name + len - flen, file, flen) == 0
				 && ((size_t)len == flen || name[len - flen - 1] == '/'))
				hit = 1;
		}
	}
	Py_DECREF(tb);
	return hit;
}

PyDoc_STRVAR(pick_line_doc,
"pick_line(file, line, n) -> ([(obj, ..., hit)], matched)\n\n"
"Up to N objects that tracemalloc says were allocated at FILE:LINE, each as\n"
"the path from an object the gc tracks to it (the object itself, or one it\n"
"holds that the gc does not track, or one such an untracked dict or tuple\n"
"holds), and how many there are.");

static PyObject *pick_line_impl(PyObject *self, PyObject *args)
{
	(void)self;
	const char *file;
	Py_ssize_t flen, n;
	long line;
	if (!PyArg_ParseTuple(args, "s#ln", &file, &flen, &line, &n))
		return NULL;
	if (n < 1 || n > 4096) {
		PyErr_SetString(PyExc_ValueError, "n must be from 1 to 4096");
		return NULL;
	}
	PyObject *tm = PyImport_ImportModule("_tracemalloc");
	if (tm == NULL)
		return NULL;
	PyObject *tb_fn = PyObject_GetAttrString(tm, "_get_object_traceback");
	Py_DECREF(tm);
	if (tb_fn == NULL)
		return NULL;
	struct reservoir r = { calloc((size_t)n, sizeof(PyObject *)), 0, n, 0, 0x9E3779B97F4A7C15ull };
	struct ptable seen;
	struct parr kids = { NULL, 0, 0, 0 }, kids2 = { NULL, 0, 0, 0 };
	PyObject *objs = NULL;
	if (r.v == NULL || ptable_init(&seen, 4096) < 0) {
		free(r.v);
		Py_DECREF(tb_fn);
		return PyErr_NoMemory();
	}
	objs = all_objects();
	int failed = objs == NULL;
	for (Py_ssize_t i = 0; !failed && i < PyList_GET_SIZE(objs); i++) {
		PyObject *o = PyList_GET_ITEM(objs, i);
		if (o == objs)
			continue;
		/* The caller turns the gc off for the call: the tuples made here
		 * must not start a collection (finalizers are Python code). */
		if (allocated_at(tb_fn, o, file, (size_t)flen, line)) {
			PyObject *p = PyTuple_Pack(1, o);
			if (p == NULL) {
				failed = 1;
				break;
			}
			reservoir_offer(&r, p);
			Py_DECREF(p);
		}
		kids.n = 0;
		referents(o, &kids);
		for (size_t k = 0; k < kids.n && !failed; k++) {
			PyObject *c = kids.v[k];
			if (is_tracked(c))
				continue;
			struct pslot *s = ptable_get(&seen, c);
			if (s == NULL) {
				failed = 1;
				break;
			}
			if (s->a++)
				continue;
			if (allocated_at(tb_fn, c, file, (size_t)flen, line)) {
				PyObject *p = PyTuple_Pack(2, o, c);
				if (p == NULL) {
					failed = 1;
					break;
				}
				reservoir_offer(&r, p);
				Py_DECREF(p);
			}
			if (!PyDict_CheckExact(c) && !PyTuple_CheckExact(c))
				continue;
			kids2.n = 0;
			referents(c, &kids2);
			for (size_t m = 0; m < kids2.n; m++) {
				PyObject *cc = kids2.v[m];
				if (is_tracked(cc))
					continue;
				struct pslot *s2 = ptable_get(&seen, cc);
				if (s2 == NULL) {
					failed = 1;
					break;
				}
				if (s2->a++)
					continue;
				if (allocated_at(tb_fn, cc, file, (size_t)flen, line)) {
					PyObject *p = PyTuple_Pack(3, o, c, cc);
					if (p == NULL) {
						failed = 1;
						break;
					}
					reservoir_offer(&r, p);
					Py_DECREF(p);
				}
			}
		}
		failed |= kids.failed | kids2.failed;
	}
	Py_XDECREF(objs);
	Py_DECREF(tb_fn);
	free(seen.s);
	free(kids.v);
	free(kids2.v);
	PyObject *out = reservoir_take(&r);
	if (failed) {
		Py_XDECREF(out);
		if (!PyErr_Occurred())
			PyErr_NoMemory();
		return NULL;
	}
	return out;
}

/* --- retained ------------------------------------------------------------ */

PyDoc_STRVAR(retained_doc,
"retained(holder, skip, max_objects, max_seconds, header) -> (bytes, objects, truncated)\n\n"
"What only HOLDER keeps alive, itself included: the objects reachable from it\n"
"(never entering a class, a module or an object of SKIP, a sequence) whose\n"
"every reference comes from that set, less everything reachable from one\n"
"referred to from elsewhere. References are counted exactly (the reference\n"
"count against the references found inside); references the gc does not\n"
"traverse count as from elsewhere. Stops at MAX_OBJECTS or MAX_SECONDS.");

static PyObject *retained_impl(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *holder, *skip;
	Py_ssize_t max_objects, header;
	double max_seconds;
	if (!PyArg_ParseTuple(args, "OOndn", &holder, &skip, &max_objects, &max_seconds, &header))
		return NULL;
	PyObject *skipseq = PySequence_Fast(skip, "skip must be a sequence");
	if (skipseq == NULL)
		return NULL;
	struct ptable skipset, index, types;
	struct parr objs = { NULL, 0, 0, 0 }, kids = { NULL, 0, 0, 0 }, todo = { NULL, 0, 0, 0 };
	size_t *first = NULL, nfirst = 0;
	int32_t *edges = NULL;
	size_t nedges = 0, capedges = 0;
	unsigned char *outside = NULL;
	int failed = 0, truncated = 0;
	if (ptable_init(&skipset, 64) < 0 || ptable_init(&index, 4096) < 0 || ptable_init(&types, 256) < 0) {
		Py_DECREF(skipseq);
		return PyErr_NoMemory();
	}
	for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(skipseq); i++)
		if (ptable_get(&skipset, PySequence_Fast_GET_ITEM(skipseq, i)) == NULL)
			failed = 1;
	double deadline = now_seconds() + max_seconds;
	struct pslot *h = ptable_get(&index, holder);
	if (h == NULL)
		failed = 1;
	else
		h->a = 0;
	parr_push(&objs, holder);
	size_t caps = 0;
	for (size_t i = 0; !failed && i < objs.n; i++) {
		if (nfirst == caps) {
			caps = caps ? caps * 2 : 1024;
			size_t *f = realloc(first, (caps + 1) * sizeof *f);
			if (f == NULL) {
				failed = 1;
				break;
			}
			first = f;
		}
		first[nfirst++] = nedges;
		kids.n = 0;
		referents(objs.v[i], &kids);
		for (size_t k = 0; k < kids.n; k++) {
			PyObject *c = kids.v[k];
			if (PyType_Check(c) || PyModule_Check(c) || ptable_find(&skipset, c))
				continue;
			struct pslot *s = ptable_find(&index, c);
			if (s == NULL) {
				if ((Py_ssize_t)objs.n >= max_objects || ((objs.n & 4095) == 0 && now_seconds() > deadline)) {
					truncated = 1;
					continue;
				}
				s = ptable_get(&index, c);
				if (s == NULL) {
					failed = 1;
					break;
				}
				s->a = (Py_ssize_t)objs.n;
				s->b = 0;
				parr_push(&objs, c);
			}
			s->b++;		/* references from inside */
			if (nedges == capedges) {
				capedges = capedges ? capedges * 2 : 4096;
				int32_t *e = realloc(edges, capedges * sizeof *e);
				if (e == NULL) {
					failed = 1;
					break;
				}
				edges = e;
			}
			edges[nedges++] = (int32_t)s->a;
		}
		failed |= kids.failed | objs.failed;
	}
	if (!failed && first != NULL)
		first[nfirst] = nedges;
	Py_ssize_t bytes = 0, count = 0;
	if (!failed) {
		outside = calloc(objs.n ? objs.n : 1, 1);
		failed = outside == NULL;
	}
	for (size_t j = 1; !failed && j < objs.n; j++) {
		struct pslot *s = ptable_find(&index, objs.v[j]);
		if (Py_REFCNT(objs.v[j]) > s->b) {
			outside[j] = 1;
			parr_push(&todo, (PyObject *)(uintptr_t)j);
		}
	}
	while (!failed && todo.n > 0) {
		size_t j = (size_t)(uintptr_t)todo.v[--todo.n];
		if (j >= nfirst)
			continue;	/* its referents were never listed (truncated) */
		for (size_t x = first[j]; x < first[j + 1]; x++) {
			int32_t k = edges[x];
			if (k > 0 && !outside[k]) {
				outside[k] = 1;
				parr_push(&todo, (PyObject *)(uintptr_t)k);
			}
		}
		failed |= todo.failed;
	}
	for (size_t j = 0; !failed && j < objs.n; j++) {
		if (outside[j])
			continue;
		bytes += size_cached(&types, objs.v[j], header);
		count++;
	}
	Py_DECREF(skipseq);
	free(skipset.s);
	free(index.s);
	types_free(&types);
	free(objs.v);
	free(kids.v);
	free(todo.v);
	free(first);
	free(edges);
	free(outside);
	if (failed)
		return PyErr_Occurred() ? NULL : PyErr_NoMemory();
	return Py_BuildValue("(nnO)", bytes, count, truncated ? Py_True : Py_False);
}

/* Each walk, timed from its start to its end (the GIL held throughout). */
#define TIMED(name, argdecl, argname)                                   \
	static PyObject *name(PyObject *self, argdecl)                  \
	{                                                               \
		double t0 = now_seconds();                              \
		PyObject *r = name##_impl(self, argname);               \
		g_last_hold = now_seconds() - t0;                       \
		return r;                                               \
	}
TIMED(tally, PyObject *arg, arg)
TIMED(pick_type, PyObject *args, args)
TIMED(pick_line, PyObject *args, args)
TIMED(retained, PyObject *args, args)

static PyMethodDef heap_methods[] = {
	{"last_hold", last_hold, METH_NOARGS, last_hold_doc},
	{"tally", tally, METH_O, tally_doc},
	{"pick_type", pick_type, METH_VARARGS, pick_type_doc},
	{"pick_line", pick_line, METH_VARARGS, pick_line_doc},
	{"retained", retained, METH_VARARGS, retained_doc},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef heap_module = {
	PyModuleDef_HEAD_INIT, "_pmt_heap", "The pmt-top agent's heap walks in C.", -1, heap_methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pmt_heap(void);

PyMODINIT_FUNC PyInit__pmt_heap(void)
{
	return PyModule_Create(&heap_module);
}
