/* The common case of monitor.normalize's folding, in one pass of table lookups.
 *
 * Python's own str methods fold text in several passes (NFKC, dropping format characters,
 * casefold, NFKC again, e -> e with diaeresis removed); together they cost more than the
 * automaton scan that follows (issue 4). Most characters of feed text are folded the same way
 * whatever surrounds them, so their folded form can be looked up one by one. The table is
 * built in Python, from unicodedata and monitor.normalize's own folding, so both agree by
 * construction (monitor/normalize.py, _fast_tables); here it is only applied.
 *
 * fold(text) returns (folded, same, mixed), or None when the text holds a character whose
 * folding depends on its neighbours (a combining mark, a character one can compose with, a
 * character beyond the SMP): the caller then folds it in Python. `same` is true when every character
 * became exactly one (offsets are kept); `mixed` when a Latin letter and a Cyrillic one are
 * adjacent in the result (a word may mix look-alikes and needs repair).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define TABLE_SIZE 0x20000 /* the BMP and the SMP (emoji) */
#define UNSAFE 0xFFFFFFFFu  /* folded in Python */
#define EXPANDS 0x80000000u /* the low 24 bits index the pool: a count, then the characters */
#define CHAR_MASK 0x1FFFFFu
#define SCRIPT_SHIFT 24 /* two bits: 1 Latin letter, 2 Cyrillic letter, 0 anything else */

static PyObject *table_obj = NULL; /* bytes: TABLE_SIZE uint32 in native byte order */
static PyObject *pool_obj = NULL;  /* bytes: uint32 */

static PyObject *set_tables(PyObject *self, PyObject *args) {
    PyObject *table, *pool;
    if (!PyArg_ParseTuple(args, "SS:set_tables", &table, &pool)) {
        return NULL;
    }
    if (PyBytes_GET_SIZE(table) != TABLE_SIZE * 4 || PyBytes_GET_SIZE(pool) % 4) {
        PyErr_SetString(PyExc_ValueError, "fold tables of the wrong size");
        return NULL;
    }
    const uint32_t *entries = (const uint32_t *)PyBytes_AS_STRING(table);
    Py_ssize_t pool_size = PyBytes_GET_SIZE(pool) / 4;
    const uint32_t *chars = (const uint32_t *)PyBytes_AS_STRING(pool);
    for (Py_ssize_t i = 0; i < TABLE_SIZE; i++) { /* every pool reference stays inside it */
        uint32_t v = entries[i];
        if (v != UNSAFE && (v & EXPANDS)) {
            Py_ssize_t at = v & 0xFFFFFF;
            if (at >= pool_size || at + 1 + (Py_ssize_t)chars[at] > pool_size) {
                PyErr_SetString(PyExc_ValueError, "fold table points outside its pool");
                return NULL;
            }
        }
    }
    Py_INCREF(table);
    Py_INCREF(pool);
    Py_XSETREF(table_obj, table);
    Py_XSETREF(pool_obj, pool);
    Py_RETURN_NONE;
}

/* The first pass over one kind of string: the folded length and largest character, or -1
 * when a character needs Python's folding (UNSAFE has the EXPANDS bit too). */
#define MEASURE(TYPE)                                                                          \
    do {                                                                                       \
        const TYPE *in = (const TYPE *)data;                                                   \
        for (Py_ssize_t i = 0; i < n; i++) {                                                   \
            Py_UCS4 ch = in[i];                                                                \
            uint32_t v = ch < TABLE_SIZE ? entries[ch] : UNSAFE;                               \
            if (v & EXPANDS) {                                                                 \
                if (v == UNSAFE) return -1;                                                    \
                const uint32_t *p = pool + (v & 0xFFFFFF);                                     \
                for (uint32_t k = 1; k <= p[0]; k++) {                                         \
                    Py_UCS4 c = p[k] & CHAR_MASK;                                              \
                    largest = c > largest ? c : largest;                                       \
                }                                                                              \
                size += (Py_ssize_t)p[0] - 1;                                                  \
                *same = 0;                                                                     \
            } else {                                                                           \
                Py_UCS4 c = v & CHAR_MASK;                                                     \
                largest = c > largest ? c : largest;                                           \
            }                                                                                  \
        }                                                                                      \
    } while (0)

static Py_ssize_t measure(int kind, const void *data, Py_ssize_t n, const uint32_t *entries,
                          const uint32_t *pool, Py_UCS4 *maxchar, int *same) {
    Py_ssize_t size = n;
    Py_UCS4 largest = 0;
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        MEASURE(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        MEASURE(Py_UCS2);
        break;
    default:
        MEASURE(Py_UCS4);
    }
    *maxchar = largest;
    return size;
}

/* The second pass, for one kind of string in and one out: write the folded characters,
 * noting adjacent Latin and Cyrillic letters (scripts 1 and 2: their xor is 3). */
#define PUT(V)                                                                                 \
    do {                                                                                       \
        uint32_t script = ((V) >> SCRIPT_SHIFT) & 3;                                           \
        mixed |= (script ^ previous) == 3;                                                     \
        previous = script;                                                                     \
        *out++ = (OUT)((V) & CHAR_MASK);                                                       \
    } while (0)

#define WRITE(IN, OUT_TYPE)                                                                    \
    do {                                                                                       \
        typedef OUT_TYPE OUT;                                                                  \
        const IN *in = (const IN *)data;                                                       \
        OUT *out = (OUT *)PyUnicode_DATA(result);                                              \
        for (Py_ssize_t i = 0; i < n; i++) {                                                   \
            uint32_t v = entries[in[i]];                                                       \
            if (v & EXPANDS) {                                                                 \
                const uint32_t *p = pool + (v & 0xFFFFFF);                                     \
                for (uint32_t k = 1; k <= p[0]; k++) PUT(p[k]);                                \
            } else {                                                                           \
                PUT(v);                                                                        \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#define WRITE_FROM(IN)                                                                         \
    do {                                                                                       \
        switch (PyUnicode_KIND(result)) {                                                      \
        case PyUnicode_1BYTE_KIND:                                                             \
            WRITE(IN, Py_UCS1);                                                                \
            break;                                                                             \
        case PyUnicode_2BYTE_KIND:                                                             \
            WRITE(IN, Py_UCS2);                                                                \
            break;                                                                             \
        default:                                                                               \
            WRITE(IN, Py_UCS4);                                                                \
        }                                                                                      \
    } while (0)

static PyObject *fold(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "fold() takes a str");
        return NULL;
    }
    if (table_obj == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "fold() before set_tables()");
        return NULL;
    }
    const uint32_t *entries = (const uint32_t *)PyBytes_AS_STRING(table_obj);
    const uint32_t *pool = (const uint32_t *)PyBytes_AS_STRING(pool_obj);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_UCS4 maxchar = 0;
    int same = 1;
    Py_ssize_t size = measure(kind, data, n, entries, pool, &maxchar, &same);
    if (size < 0) {
        Py_RETURN_NONE;
    }
    PyObject *result = PyUnicode_New(size, maxchar);
    if (result == NULL) {
        return NULL;
    }
    uint32_t previous = 0, mixed = 0;
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        WRITE_FROM(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        WRITE_FROM(Py_UCS2);
        break;
    default:
        WRITE_FROM(Py_UCS4);
    }
    return Py_BuildValue("(NNN)", result, PyBool_FromLong(same), PyBool_FromLong(mixed));
}

static PyMethodDef methods[] = {
    {"set_tables", set_tables, METH_VARARGS, "Install the tables fold() applies."},
    {"fold", fold, METH_O, "Fold text by table, or None when Python must fold it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastfold", "Table-driven text folding (monitor.normalize).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__fastfold(void) { return PyModule_Create(&module); }
