/* The hot path of matching in C: folding text (monitor.match.fold), checking the anchors the
 * automaton finds (monitor.match.matcher) and cutting snippets (monitor.match.normtext). The
 * first two only apply what Python decided (tables and candidate lists are built in Python,
 * so the rules live in one place); snippet() follows make_snippet's docstring, and the tests
 * check it against the same rules written plainly in Python.
 *
 * fold(text): Python's own str methods fold text in several passes (NFKC, dropping format
 * characters, casefold, NFKC again, e with diaeresis -> e); together they cost more than the
 * automaton scan that follows. Most characters of feed text are folded the same way whatever
 * surrounds them, so their folded form can be looked up one by one, from a table built from
 * Python's own folding (monitor/match/fold.py, _fast_tables). It returns a Folded (text,
 * offsets_kept, mixed_scripts), or None when the text holds a character whose folding
 * depends on its neighbours (a combining mark, a character one can compose with, a character
 * beyond the SMP): the caller then folds it in Python. `offsets_kept` is true when every
 * character became exactly one; `mixed_scripts` when a Latin letter and a Cyrillic one are
 * adjacent in the result (a word may mix look-alikes and needs repair). fold_ascii(text) is
 * the same for ASCII text, which needs no table (lower() is its folding).
 *
 * collect(...): monitor.match.matcher's check of each found anchor against the terms it may
 * begin; see collect_doc below. snippet(...): see snippet_doc.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define TABLE_SIZE 0x20000 /* the BMP and the SMP (emoji) */
#define UNSAFE 0xFFFFFFFFu  /* folded in Python */
#define EXPANDS 0x80000000u /* the low 24 bits index the pool: a count, then the characters */
#define CHAR_MASK 0x1FFFFFu
#define SCRIPT_SHIFT 24 /* two bits: 1 Latin letter, 2 Cyrillic letter, 0 anything else */

/* What fold() returns, and what monitor.match.fold.fold() returns on its Python paths too. */
static PyTypeObject *folded_type = NULL;

static PyStructSequence_Field folded_fields[] = {
    {"text", "the folded text"},
    {"offsets_kept", "every character became exactly one: offsets are the original's"},
    {"mixed_scripts",
     "a Latin and a Cyrillic letter may be adjacent: look-alikes may need repair"},
    {NULL, NULL},
};

static PyStructSequence_Desc folded_desc = {
    "monitor.match._speedups.Folded",
    "Folded(text, offsets_kept, mixed_scripts): text folded for matching, and what the\n"
    "folding did to it.",
    folded_fields,
    3,
};

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

/* A Folded of `text` (a new reference, stolen) and the two flags. */
static PyObject *new_folded(PyObject *text, int same, int mixed) {
    if (text == NULL) {
        return NULL;
    }
    PyObject *folded = PyStructSequence_New(folded_type);
    if (folded == NULL) {
        Py_DECREF(text);
        return NULL;
    }
    PyStructSequence_SET_ITEM(folded, 0, text);
    PyStructSequence_SET_ITEM(folded, 1, Py_NewRef(same ? Py_True : Py_False));
    PyStructSequence_SET_ITEM(folded, 2, Py_NewRef(mixed ? Py_True : Py_False));
    return folded;
}

/* ASCII text is NFKC-stable and holds no format character, and lower() is its case folding:
 * no table is needed (so folding ASCII text never builds one), and every offset is kept. The
 * same as fold() gives, without the table, and cheaper than building a Folded in Python. */
static PyObject *fold_ascii(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_TypeError, "fold_ascii() takes an ASCII str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *result = PyUnicode_New(n, 127);
    if (result == NULL) {
        return NULL;
    }
    const Py_UCS1 *in = PyUnicode_1BYTE_DATA(text);
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = (Py_UCS1)Py_TOLOWER(in[i]);
    }
    return new_folded(result, 1, 0);
}

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
    return new_folded(result, same, mixed);
}


/* How a candidate is checked: monitor.match.plan's EXACT, ENDINGS, PREFIX, WORDS. */
enum { EXACT, ENDINGS, PREFIX, WORDS };

static PyObject *joiner_obj = NULL; /* bytes: a bit per code point, set for word characters */

static PyObject *set_joiners(PyObject *self, PyObject *bitmap) {
    if (!PyBytes_Check(bitmap) || PyBytes_GET_SIZE(bitmap) != 0x110000 / 8) {
        PyErr_SetString(PyExc_ValueError, "set_joiners() takes 0x110000 bits as bytes");
        return NULL;
    }
    Py_INCREF(bitmap);
    Py_XSETREF(joiner_obj, bitmap);
    Py_RETURN_NONE;
}

static inline int joins(const unsigned char *bits, Py_UCS4 ch) {
    return (bits[ch >> 3] >> (ch & 7)) & 1;
}

/* Append (name, segment, start, end) to hits[tid]. */
static int add_hit(PyObject *hits, PyObject *tid, PyObject *name, Py_ssize_t segment,
                   Py_ssize_t start, Py_ssize_t end) {
    PyObject *hit = Py_BuildValue("(Onnn)", name, segment, start, end);
    if (hit == NULL) {
        return -1;
    }
    PyObject *found = PyDict_GetItemWithError(hits, tid); /* borrowed */
    int failed;
    if (found != NULL) {
        failed = PyList_Append(found, hit);
    } else if (PyErr_Occurred()) {
        failed = -1;
    } else {
        PyObject *list = PyList_New(1);
        failed = list == NULL ? -1 : 0;
        if (list != NULL) {
            Py_INCREF(hit);
            PyList_SET_ITEM(list, 0, hit);
            failed = PyDict_SetItem(hits, tid, list);
            Py_DECREF(list);
        }
    }
    Py_DECREF(hit);
    return failed;
}

/* Check the candidates of one anchor found at [start, end), in one field's list. */
static int check_candidates(PyObject *hits, PyObject *name, PyObject *candidates,
                            Py_ssize_t segment, PyObject *text, Py_ssize_t start,
                            Py_ssize_t rest, PyObject *words, PyObject *norm) {
    Py_ssize_t count = PyTuple_GET_SIZE(candidates);
    for (Py_ssize_t k = 0; k < count; k++) {
        /* (tid, check, length, endings, plan) */
        PyObject *candidate = PyTuple_GET_ITEM(candidates, k);
        if (!PyTuple_Check(candidate) || PyTuple_GET_SIZE(candidate) != 5) {
            PyErr_SetString(PyExc_TypeError, "collect(): a candidate of the wrong shape");
            return -1;
        }
        PyObject *tid = PyTuple_GET_ITEM(candidate, 0);
        long check = PyLong_AsLong(PyTuple_GET_ITEM(candidate, 1));
        Py_ssize_t length = PyLong_AsSsize_t(PyTuple_GET_ITEM(candidate, 2));
        if (PyErr_Occurred()) {
            return -1;
        }
        Py_ssize_t hit_start = start, hit_end = rest;
        if (check == WORDS) {
            PyObject *plan = PyTuple_GET_ITEM(candidate, 4);
            PyObject *span = PyObject_CallFunction(words, "OnO", norm, start, plan);
            if (span == NULL) {
                return -1;
            }
            if (span == Py_None) {
                Py_DECREF(span);
                continue;
            }
            int ok = PyArg_ParseTuple(span, "nn", &hit_start, &hit_end);
            Py_DECREF(span);
            if (!ok) {
                return -1;
            }
        } else if (check == EXACT) {
            if (rest != start + length) continue;
        } else if (check == ENDINGS) {
            PyObject *ending = PyUnicode_Substring(text, start + length, rest);
            if (ending == NULL) {
                return -1;
            }
            int found = PySet_Contains(PyTuple_GET_ITEM(candidate, 3), ending);
            Py_DECREF(ending);
            if (found < 0) {
                return -1;
            }
            if (!found) continue;
        } /* PREFIX: any word starting with the stem */
        if (add_hit(hits, tid, name, segment, hit_start, hit_end) < 0) {
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(collect_doc,
"collect(found, text, starts, slots, check_left, words, norm) -> dict\n\n"
"Check each anchor the automaton found in ``text`` (``found``: (anchor, start, end)\n"
"tuples, in text order) against the terms it may begin, in the fields of its segment.\n"
"An anchor whose check_left byte is set counts only at a word start; ``starts`` are where\n"
"the segments begin, ``slots[segment]`` lists (field name, candidates per anchor) and a\n"
"candidate is (tid, check, stem length, endings, plan). WORDS candidates are checked by\n"
"calling ``words(norm, start, plan)``, which returns a span or None. Returns\n"
"{tid: [(field, segment, start, end), ...]}; monitor.match's docstring has the rules.");

static PyObject *collect(PyObject *self, PyObject *args) {
    PyObject *found, *text, *starts, *slots, *check_left, *words, *norm;
    if (!PyArg_ParseTuple(args, "O!UO!O!SOO:collect", &PyList_Type, &found, &text, &PyList_Type,
                          &starts, &PyList_Type, &slots, &check_left, &words, &norm)) {
        return NULL;
    }
    if (joiner_obj == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "collect() before set_joiners()");
        return NULL;
    }
    const char *left = PyBytes_AS_STRING(check_left);
    Py_ssize_t anchors = PyBytes_GET_SIZE(check_left);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (PyList_GET_SIZE(slots) != PyList_GET_SIZE(starts)) {
        PyErr_SetString(PyExc_ValueError, "collect(): one slot list per segment");
        return NULL;
    }
    /* held for the call: words() runs Python code, which could install another bitmap */
    PyObject *joiners = Py_NewRef(joiner_obj);
    const unsigned char *bits = (const unsigned char *)PyBytes_AS_STRING(joiners);
    PyObject *hits = PyDict_New();
    if (hits == NULL) {
        Py_DECREF(joiners);
        return NULL;
    }
    /* words() runs Python code, which may change the lists passed in (the lists hold the
     * only references to what they contain): what is in use across a call is held, and
     * the lists' sizes are read again after one. */
    Py_ssize_t segment = -1, bound = -1;
    PyObject *fields = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(found); i++) {
        PyObject *match = PyList_GET_ITEM(found, i); /* read before any call: borrowed */
        if (!PyTuple_Check(match) || PyTuple_GET_SIZE(match) != 3) {
            PyErr_SetString(PyExc_TypeError, "collect(): matches are (anchor, start, end)");
            goto error;
        }
        Py_ssize_t aid = PyLong_AsSsize_t(PyTuple_GET_ITEM(match, 0));
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(match, 1));
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(match, 2));
        if (PyErr_Occurred()) {
            goto error;
        }
        if (aid < 0 || aid >= anchors || start < 0 || end < start || end > size) {
            PyErr_SetString(PyExc_ValueError, "collect(): a match outside the text or anchors");
            goto error;
        }
        if (start && left[aid] && joins(bits, PyUnicode_READ(kind, data, start - 1))) {
            continue; /* a word character before: not a word start */
        }
        while (start >= bound) {
            segment++;
            Py_ssize_t segments = PyList_GET_SIZE(starts);
            if (PyList_GET_SIZE(slots) != segments) {
                PyErr_SetString(PyExc_ValueError, "collect(): one slot list per segment");
                goto error;
            }
            if (segment >= segments) {
                PyErr_SetString(PyExc_ValueError, "collect(): a match past the last segment");
                goto error;
            }
            bound = segment + 1 < segments
                        ? PyLong_AsSsize_t(PyList_GET_ITEM(starts, segment + 1))
                        : size + 1;
            if (bound == -1 && PyErr_Occurred()) {
                goto error;
            }
            Py_XSETREF(fields, Py_NewRef(PyList_GET_ITEM(slots, segment)));
            if (!PyList_Check(fields)) {
                goto bad_shape;
            }
        }
        Py_ssize_t rest = end; /* where the word at the anchor ends */
        while (rest < size && joins(bits, PyUnicode_READ(kind, data, rest))) {
            rest++;
        }
        for (Py_ssize_t f = 0; f < PyList_GET_SIZE(fields); f++) {
            PyObject *slot = PyList_GET_ITEM(fields, f); /* (name, candidates per anchor) */
            if (!PyTuple_Check(slot) || PyTuple_GET_SIZE(slot) != 2) {
                goto bad_shape;
            }
            PyObject *per_anchor = PyTuple_GET_ITEM(slot, 1);
            if (!PyList_Check(per_anchor) || PyList_GET_SIZE(per_anchor) <= aid) {
                goto bad_shape;
            }
            PyObject *candidates = PyList_GET_ITEM(per_anchor, aid);
            if (!PyTuple_Check(candidates)) {
                goto bad_shape;
            }
            if (PyTuple_GET_SIZE(candidates) == 0) {
                continue;
            }
            /* the slot holds the field name; the candidates hold each candidate's parts */
            Py_INCREF(slot);
            Py_INCREF(candidates);
            int failed = check_candidates(hits, PyTuple_GET_ITEM(slot, 0), candidates, segment,
                                          text, start, rest, words, norm);
            Py_DECREF(candidates);
            Py_DECREF(slot);
            if (failed < 0) {
                goto error;
            }
        }
    }
    Py_XDECREF(fields);
    Py_DECREF(joiners);
    return hits;
bad_shape:
    PyErr_SetString(PyExc_TypeError, "collect(): slots of the wrong shape");
error:
    Py_XDECREF(fields);
    Py_DECREF(joiners);
    Py_DECREF(hits);
    return NULL;
}


/* ---- snippet(): monitor.match.normtext.make_snippet ------------------------------------- */

#define HIGHLIGHT_START 0xE000
#define HIGHLIGHT_END 0xE001

typedef struct {
    Py_UCS4 *chars;
    Py_ssize_t size, room;
} Out;

static int put_raw(Out *out, Py_UCS4 ch) {
    if (out->size == out->room) {
        if (out->room > (PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(Py_UCS4) - 128) / 2) {
            PyErr_NoMemory();
            return -1;
        }
        Py_ssize_t room = out->room * 2 + 128;
        Py_UCS4 *chars = PyMem_Realloc(out->chars, room * sizeof(Py_UCS4));
        if (chars == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        out->chars = chars;
        out->room = room;
    }
    out->chars[out->size++] = ch;
    return 0;
}

/* A character of the text: highlight markers in it are dropped (a feed cannot forge one),
 * and a lone surrogate, which no encoding can carry, is shown as U+FFFD. */
static int put(Out *out, Py_UCS4 ch) {
    if (ch == HIGHLIGHT_START || ch == HIGHLIGHT_END) {
        return 0;
    }
    return put_raw(out, Py_UNICODE_IS_SURROGATE(ch) ? 0xFFFD : ch);
}

/* The words (whitespace-separated runs, as str.split() finds them) of text[low:high],
 * skipping the first `skip_first` and the last `skip_last`, joined by one space. */
static int put_words(Out *out, int kind, const void *data, Py_ssize_t low, Py_ssize_t high,
                     Py_ssize_t skip_first, Py_ssize_t skip_last, Py_ssize_t words) {
    Py_ssize_t word = 0;
    Py_ssize_t i = low;
    while (i < high) {
        while (i < high && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) i++;
        if (i == high) break;
        int keep = word >= skip_first && word < words - skip_last;
        if (keep && word > skip_first && put(out, ' ') < 0) return -1;
        while (i < high && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i))) {
            if (keep && put(out, PyUnicode_READ(kind, data, i)) < 0) return -1;
            i++;
        }
        word++;
    }
    return 0;
}

static Py_ssize_t count_words(int kind, const void *data, Py_ssize_t low, Py_ssize_t high) {
    Py_ssize_t words = 0;
    int in_word = 0;
    for (Py_ssize_t i = low; i < high; i++) {
        int space = Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i));
        words += !space && !in_word;
        in_word = !space;
    }
    return words;
}

PyDoc_STRVAR(snippet_doc,
"snippet(original, start, end, width, first, last) -> str\n\n"
"monitor.match.normtext.make_snippet for original[first:last]; its docstring has the\n"
"rules.");

static PyObject *snippet(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t start, end, width, first, last;
    if (!PyArg_ParseTuple(args, "Unnnnn:snippet", &text, &start, &end, &width, &first, &last)) {
        return NULL;
    }
    if (!(0 <= first && first <= start && start <= end && end <= last &&
          last <= PyUnicode_GET_LENGTH(text))) {
        PyErr_SetString(PyExc_ValueError,
                        "snippet(): need 0 <= first <= start <= end <= last <= len");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
#define AT(i) PyUnicode_READ(kind, data, (i))
    Py_ssize_t room = end - start < width ? width - (end - start) : 0;
    Py_ssize_t before = room / 2, after = room - room / 2;
    /* room the other side cannot use */
    if (room - (last - end) > before) before = room - (last - end);
    if (room - (start - first) > after) after = room - (start - first);
    /* compared as distances, not as sums: a huge width must not overflow */
    Py_ssize_t low = before < start - first ? start - before : first;
    Py_ssize_t high = after < last - end ? end + after : last;

    Py_ssize_t left = count_words(kind, data, low, start);
    Py_ssize_t right = count_words(kind, data, end, high);
    Py_ssize_t cut_left = low > first && left > 1 && !Py_UNICODE_ISSPACE(AT(low - 1));
    Py_ssize_t cut_right = high < last && right > 1 && !Py_UNICODE_ISSPACE(AT(high));

    int collapse = 0; /* the match itself: whitespace runs as one space when there are any */
    for (Py_ssize_t i = start; i < end && !collapse; i++) {
        Py_UCS4 ch = AT(i);
        collapse = ch == ' ' || !Py_UNICODE_ISPRINTABLE(ch);
    }

    Out out = {NULL, 0, 0};
    int failed = low > first && put_raw(&out, 0x2026) < 0; /* an ellipsis shows a cut */
    failed = failed || put_words(&out, kind, data, low, start, cut_left, 0, left) < 0;
    if (!failed && left && Py_UNICODE_ISSPACE(AT(start - 1))) failed = put(&out, ' ') < 0;
    failed = failed || put_raw(&out, HIGHLIGHT_START) < 0;
    if (!failed && collapse) {
        Py_ssize_t words = count_words(kind, data, start, end);
        failed = put_words(&out, kind, data, start, end, 0, 0, words) < 0;
    } else {
        for (Py_ssize_t i = start; i < end && !failed; i++) failed = put(&out, AT(i)) < 0;
    }
    failed = failed || put_raw(&out, HIGHLIGHT_END) < 0;
    if (!failed && right && Py_UNICODE_ISSPACE(AT(end))) failed = put(&out, ' ') < 0;
    failed = failed || put_words(&out, kind, data, end, high, 0, cut_right, right) < 0;
    failed = failed || (high < last && put_raw(&out, 0x2026) < 0);
#undef AT
    PyObject *result =
        failed ? NULL : PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out.chars, out.size);
    PyMem_Free(out.chars);
    return result;
}

static PyMethodDef methods[] = {
    {"set_tables", set_tables, METH_VARARGS, "Install the tables fold() applies."},
    {"fold", fold, METH_O, "Fold text by table (a Folded), or None when Python must fold it."},
    {"fold_ascii", fold_ascii, METH_O, "Fold ASCII text (a Folded): lower(), no table needed."},
    {"set_joiners", set_joiners, METH_O, "Install the word-character bitmap collect() uses."},
    {"collect", collect, METH_VARARGS, collect_doc},
    {"snippet", snippet, METH_VARARGS, snippet_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups",
    "The hot path of matching (monitor.match.fold, .matcher, .normtext).", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (folded_type == NULL) {
        folded_type = PyStructSequence_NewType(&folded_desc);
        if (folded_type == NULL) {
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddObjectRef(m, "Folded", (PyObject *)folded_type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
