/* DWARF line tables and DIE walks for pprof_py's cold symbolization: see
 * dwarfscan.h for the interface and pprof_py/symbolize/dwarf.py / dies.py
 * for the Python reference implementations these must agree with.
 *
 * Bounds: every read goes through a `cursor` that knows where its buffer
 * ends; a read past the end sets the cursor's `bad` flag and yields 0, and
 * callers check the flag before trusting what they read.  So damaged input
 * gives PPD_E_DAMAGED, never an out-of-bounds read.
 */
#include "dwarfscan.h"

#include <stdlib.h>
#include <string.h>

/* ---- bounded reading ---------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
    int bad;
    int little;
} cursor;

static uint8_t rd_u8(cursor *c) {
    if (c->pos >= c->len) {
        c->bad = 1;
        return 0;
    }
    return c->data[c->pos++];
}

/* An unsigned integer of `size` bytes (1..8) in the cursor's byte order. */
static uint64_t rd_uint(cursor *c, unsigned size) {
    if (size > 8 || c->len - c->pos < size || c->pos > c->len) {
        c->bad = 1;
        return 0;
    }
    const uint8_t *p = c->data + c->pos;
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[c->little ? i : size - 1 - i] << (8 * i);
    c->pos += size;
    return v;
}

/* LEB128 (section 7.6).  Bits past the 64th are dropped (padding bytes are
 * legal); a value that runs off the buffer is damage. */
static uint64_t rd_uleb(cursor *c) {
    uint64_t v = 0;
    unsigned shift = 0;
    for (;;) {
        if (c->pos >= c->len) {
            c->bad = 1;
            return 0;
        }
        uint8_t b = c->data[c->pos++];
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (b < 0x80)
            return v;
    }
}

static int64_t rd_sleb(cursor *c) {
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        if (c->pos >= c->len) {
            c->bad = 1;
            return 0;
        }
        b = c->data[c->pos++];
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b >= 0x80);
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return (int64_t)v;
}

static void skip_bytes(cursor *c, uint64_t n) {
    if (n > c->len - c->pos || c->pos > c->len)
        c->bad = 1;
    else
        c->pos += (size_t)n;
}

/* ---- line tables ---------------------------------------------------------- */

typedef struct {
    uint64_t *addr;
    uint64_t *file;
    int64_t *line;
    size_t n, cap;
} rows;

static int rows_push(rows *r, uint64_t addr, uint64_t file, int64_t line) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        uint64_t *a = realloc(r->addr, cap * sizeof *a);
        if (a) r->addr = a;
        uint64_t *f = realloc(r->file, cap * sizeof *f);
        if (f) r->file = f;
        int64_t *l = realloc(r->line, cap * sizeof *l);
        if (l) r->line = l;
        if (!a || !f || !l)
            return PPD_E_NOMEM;
        r->cap = cap;
    }
    r->addr[r->n] = addr;
    r->file[r->n] = file;
    r->line[r->n] = line;
    r->n++;
    return PPD_OK;
}

/* First index i with wanted[i] >= x. */
static size_t lower_bound(const uint64_t *v, size_t n, uint64_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Python's bisect.bisect_right, kept exactly (rows are sorted in valid
 * tables; on unsorted ones we still pick the row dwarf.py picks). */
static size_t bisect_right(const uint64_t *v, size_t n, uint64_t x) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x < v[mid]) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* A sequence ended at `end`: answer the wanted addresses inside it.  Later
 * sequences with the same start replace earlier answers (>=), as dwarf.py's
 * line_for prefers the later of equal starts. */
static void answer_sequence(const rows *r, uint64_t end, const uint64_t *wanted, size_t n_wanted,
                            uint64_t *best_start, uint64_t *out_file, int64_t *out_line, uint8_t *found) {
    uint64_t start = r->addr[0];
    if (end <= start)
        return;
    for (size_t i = lower_bound(wanted, n_wanted, start); i < n_wanted && wanted[i] < end; i++) {
        if (found[i] && best_start[i] > start)
            continue;
        size_t k = bisect_right(r->addr, r->n, wanted[i]);
        /* k >= 1: rows[0] is the start and <= wanted[i] */
        found[i] = 1;
        best_start[i] = start;
        out_file[i] = r->file[k - 1];
        out_line[i] = r->line[k - 1];
    }
}

PPD_EXPORT int ppd_line_lookup(const uint8_t *prog, size_t len, int version, int little_endian,
                               unsigned min_inst, int line_base, unsigned line_range,
                               unsigned opcode_base, const uint8_t *std_lengths,
                               const uint64_t *wanted, size_t n_wanted,
                               uint64_t *out_file, int64_t *out_line, uint8_t *found) {
    if (line_range == 0 || opcode_base == 0 || opcode_base > 256)
        return PPD_E_DAMAGED;
    memset(found, 0, n_wanted);
    uint64_t *best_start = malloc((n_wanted ? n_wanted : 1) * sizeof *best_start);
    if (!best_start)
        return PPD_E_NOMEM;
    rows r = {0};
    cursor c = {prog, len, 0, 0, little_endian};
    /* BFD 2.40 starts each DWARF 5 sequence at file entry 0 (dwarf.py says why). */
    const uint64_t first_file = version >= 5 ? 0 : 1;
    const uint64_t const_add = (uint64_t)min_inst * ((255 - opcode_base) / line_range);
    uint64_t address = 0, file = first_file;
    int64_t line = 1;
    int rc = PPD_OK;
    while (c.pos < c.len && rc == PPD_OK) {
        unsigned op = rd_u8(&c);
        int row = 0;
        if (op >= opcode_base) {               /* special opcode */
            unsigned adj = op - opcode_base;
            address += (uint64_t)min_inst * (adj / line_range);
            line += line_base + (int64_t)(adj % line_range);
            row = 1;
        } else if (op == 0) {                  /* extended opcode */
            uint64_t length = rd_uleb(&c);
            if (c.bad)
                break;
            if (length == 0)
                continue;
            if (length > c.len - c.pos) {
                c.bad = 1;
                break;
            }
            size_t body = c.pos;
            unsigned sub = prog[body];
            c.pos += (size_t)length;
            if (sub == 1) {                    /* end_sequence */
                if (r.n)
                    answer_sequence(&r, address, wanted, n_wanted, best_start, out_file, out_line, found);
                address = 0, file = first_file, line = 1;
                r.n = 0;
            } else if (sub == 2) {             /* set_address */
                cursor a = {prog, body + (size_t)length, body + 1, 0, little_endian};
                if (length - 1 > 8) {
                    c.bad = 1;
                    break;
                }
                address = rd_uint(&a, (unsigned)(length - 1));
            }
            continue;
        } else if (op == 1) {                  /* copy */
            row = 1;
        } else if (op == 2) {                  /* advance_pc */
            address += rd_uleb(&c) * min_inst;
        } else if (op == 3) {                  /* advance_line */
            line += rd_sleb(&c);
        } else if (op == 4) {                  /* set_file */
            file = rd_uleb(&c);
        } else if (op == 8) {                  /* const_add_pc */
            address += const_add;
        } else if (op == 9) {                  /* fixed_advance_pc */
            address += rd_uint(&c, 2);
        } else {                               /* operands we do not need */
            for (unsigned k = 0; k < std_lengths[op - 1]; k++)
                rd_uleb(&c);
        }
        if (c.bad)
            break;
        if (row) {
            /* the last row at an address wins */
            if (r.n && r.addr[r.n - 1] == address) {
                r.file[r.n - 1] = file;
                r.line[r.n - 1] = line;
            } else {
                rc = rows_push(&r, address, file, line);
            }
        }
    }
    free(r.addr);
    free(r.file);
    free(r.line);
    free(best_start);
    if (rc != PPD_OK)
        return rc;
    return c.bad ? PPD_E_DAMAGED : PPD_OK;
}

/* ---- abbreviation tables -------------------------------------------------- */

typedef struct {
    uint64_t attr;
    uint64_t form;
    int64_t implicit;
} spec;

typedef struct {
    uint64_t tag;
    uint32_t first;      /* index of its first spec */
    uint32_t count;
    uint8_t has_children;
    uint8_t defined;
} abbrev;

struct ppd_abbrev_table {
    abbrev *by_code;     /* indexed by abbreviation code */
    size_t n_codes;
    spec *specs;
    size_t n_specs;
};

/* Codes are small and dense in every producer's output; beyond this many we
 * let Python's dict-based reader handle the table. */
#define MAX_ABBREV_CODE (1u << 20)

enum {
    FORM_addr = 0x01, FORM_block2 = 0x03, FORM_block4 = 0x04, FORM_data2 = 0x05, FORM_data4 = 0x06,
    FORM_data8 = 0x07, FORM_string = 0x08, FORM_block = 0x09, FORM_block1 = 0x0a, FORM_data1 = 0x0b,
    FORM_flag = 0x0c, FORM_sdata = 0x0d, FORM_strp = 0x0e, FORM_udata = 0x0f, FORM_ref_addr = 0x10,
    FORM_ref1 = 0x11, FORM_ref2 = 0x12, FORM_ref4 = 0x13, FORM_ref8 = 0x14, FORM_ref_udata = 0x15,
    FORM_indirect = 0x16, FORM_sec_offset = 0x17, FORM_exprloc = 0x18, FORM_flag_present = 0x19,
    FORM_strx = 0x1a, FORM_addrx = 0x1b, FORM_ref_sup4 = 0x1c, FORM_strp_sup = 0x1d, FORM_data16 = 0x1e,
    FORM_line_strp = 0x1f, FORM_ref_sig8 = 0x20, FORM_implicit_const = 0x21, FORM_loclistx = 0x22,
    FORM_rnglistx = 0x23, FORM_ref_sup8 = 0x24, FORM_strx1 = 0x25, FORM_strx2 = 0x26, FORM_strx3 = 0x27,
    FORM_strx4 = 0x28, FORM_addrx1 = 0x29, FORM_addrx2 = 0x2a, FORM_addrx3 = 0x2b, FORM_addrx4 = 0x2c,
    FORM_GNU_addr_index = 0x1f01, FORM_GNU_str_index = 0x1f02, FORM_GNU_ref_alt = 0x1f20,
    FORM_GNU_strp_alt = 0x1f21,
};

enum {
    AT_sibling = 0x01, AT_name = 0x03, AT_low_pc = 0x11, AT_high_pc = 0x12, AT_abstract_origin = 0x31,
    AT_specification = 0x47, AT_ranges = 0x55, AT_call_file = 0x58, AT_call_line = 0x59,
    AT_linkage_name = 0x6e, AT_MIPS_linkage_name = 0x2007,
};

enum {
    TAG_lexical_block = 0x0b, TAG_inlined_subroutine = 0x1d, TAG_module = 0x1e, TAG_catch_block = 0x25,
    TAG_subprogram = 0x2e, TAG_try_block = 0x32, TAG_namespace = 0x39,
};

PPD_EXPORT void ppd_abbrev_free(ppd_abbrev_table *t) {
    if (!t)
        return;
    free(t->by_code);
    free(t->specs);
    free(t);
}

PPD_EXPORT ppd_abbrev_table *ppd_abbrev_parse(const uint8_t *data, size_t len, size_t offset, int *err) {
    cursor c = {data, len, offset, offset > len, 1};
    ppd_abbrev_table *t = calloc(1, sizeof *t);
    size_t spec_cap = 0;
    *err = PPD_E_NOMEM;
    if (!t)
        return NULL;
    for (;;) {
        uint64_t code = rd_uleb(&c);
        if (c.bad)
            goto damaged;
        if (code == 0)
            break;
        if (code >= MAX_ABBREV_CODE) {
            *err = PPD_E_UNSUPPORTED;
            goto fail;
        }
        if (code >= t->n_codes) {
            size_t n = t->n_codes ? t->n_codes : 64;
            while (n <= code) n *= 2;
            abbrev *grown = realloc(t->by_code, n * sizeof *grown);
            if (!grown)
                goto fail;
            memset(grown + t->n_codes, 0, (n - t->n_codes) * sizeof *grown);
            t->by_code = grown;
            t->n_codes = n;
        }
        abbrev a = {0};
        a.tag = rd_uleb(&c);
        a.has_children = rd_u8(&c) != 0;
        a.first = (uint32_t)t->n_specs;
        a.defined = 1;
        for (;;) {
            uint64_t attr = rd_uleb(&c), form = rd_uleb(&c);
            if (c.bad)
                goto damaged;
            if (attr == 0 && form == 0)
                break;
            int64_t implicit = form == FORM_implicit_const ? rd_sleb(&c) : 0;
            if (c.bad)
                goto damaged;
            if (t->n_specs == spec_cap) {
                size_t cap = spec_cap ? 2 * spec_cap : 256;
                spec *grown = realloc(t->specs, cap * sizeof *grown);
                if (!grown)
                    goto fail;
                t->specs = grown;
                spec_cap = cap;
            }
            if (t->n_specs >= UINT32_MAX)
                goto damaged;
            t->specs[t->n_specs++] = (spec){attr, form, implicit};
            a.count++;
        }
        t->by_code[code] = a;        /* a repeated code: the last one wins, as in dies.py */
    }
    *err = PPD_OK;
    return t;
damaged:
    *err = PPD_E_DAMAGED;
fail:
    ppd_abbrev_free(t);
    return NULL;
}

static const abbrev *lookup(const ppd_abbrev_table *t, uint64_t code) {
    if (code >= t->n_codes || !t->by_code[code].defined)
        return NULL;
    return &t->by_code[code];
}

/* ---- attribute values ----------------------------------------------------- */

/* Reads (or skips) one attribute of form `form` at the cursor and returns
 * the value dies.py's _value returns for it (see dwarfscan.h).  Sets
 * c->bad on damage or an unknown form. */
static uint64_t read_form(cursor *c, const ppd_unit *u, uint64_t form, int64_t implicit) {
    for (int hops = 0;; hops++) {
        switch (form) {
        case FORM_implicit_const: return (uint64_t)implicit;
        case FORM_flag_present: return 1;
        case FORM_addr: return rd_uint(c, (unsigned)u->address_size);
        case FORM_flag: return rd_u8(c) != 0;
        case FORM_data1: case FORM_strx1: case FORM_addrx1: return rd_uint(c, 1);
        case FORM_data2: case FORM_strx2: case FORM_addrx2: return rd_uint(c, 2);
        case FORM_strx3: case FORM_addrx3: return rd_uint(c, 3);
        case FORM_data4: case FORM_strx4: case FORM_addrx4: return rd_uint(c, 4);
        case FORM_data8: return rd_uint(c, 8);
        case FORM_ref1: return rd_uint(c, 1) + u->unit_offset;
        case FORM_ref2: return rd_uint(c, 2) + u->unit_offset;
        case FORM_ref4: return rd_uint(c, 4) + u->unit_offset;
        case FORM_ref8: return rd_uint(c, 8) + u->unit_offset;
        case FORM_ref_udata: return rd_uleb(c) + u->unit_offset;
        case FORM_sec_offset: case FORM_strp: case FORM_line_strp:
            return rd_uint(c, (unsigned)u->offset_size);
        case FORM_strp_sup: case FORM_GNU_ref_alt: case FORM_GNU_strp_alt:
            rd_uint(c, (unsigned)u->offset_size);
            return 0;
        case FORM_udata: case FORM_strx: case FORM_addrx: case FORM_rnglistx:
        case FORM_GNU_addr_index: case FORM_GNU_str_index:
            return rd_uleb(c);
        case FORM_loclistx:
            rd_uleb(c);
            return 0;
        case FORM_sdata: return (uint64_t)rd_sleb(c);
        case FORM_ref_addr:
            return rd_uint(c, (unsigned)(u->version == 2 ? u->address_size : u->offset_size));
        case FORM_string: {
            size_t start = c->pos;
            const uint8_t *nul = start < c->len ? memchr(c->data + start, 0, c->len - start) : NULL;
            if (!nul) {
                c->bad = 1;
                return 0;
            }
            c->pos = (size_t)(nul - c->data) + 1;
            return start;
        }
        case FORM_ref_sig8: case FORM_ref_sup8: skip_bytes(c, 8); return 0;
        case FORM_ref_sup4: skip_bytes(c, 4); return 0;
        case FORM_data16: skip_bytes(c, 16); return 0;
        case FORM_block1: skip_bytes(c, rd_uint(c, 1)); return 0;
        case FORM_block2: skip_bytes(c, rd_uint(c, 2)); return 0;
        case FORM_block4: skip_bytes(c, rd_uint(c, 4)); return 0;
        case FORM_block: case FORM_exprloc: skip_bytes(c, rd_uleb(c)); return 0;
        case FORM_indirect:
            /* the form is in the data; its value is not used (None in dies.py) */
            form = rd_uleb(c);
            if (c->bad || hops > 16 || form == FORM_implicit_const) {
                c->bad = 1;
                return 0;
            }
            (void)read_form(c, u, form, 0);
            return 0;
        default:
            c->bad = 1;
            return 0;
        }
    }
}

/* Does dies.py's _value give this form's value (rather than None)? */
static int form_has_value(uint64_t form) {
    switch (form) {
    case FORM_strp_sup: case FORM_GNU_ref_alt: case FORM_GNU_strp_alt: case FORM_loclistx:
    case FORM_ref_sig8: case FORM_ref_sup8: case FORM_ref_sup4: case FORM_data16: case FORM_block1:
    case FORM_block2: case FORM_block4: case FORM_block: case FORM_exprloc: case FORM_indirect:
        return 0;
    default:
        return 1;
    }
}

static int is_wanted_attr(uint64_t attr) {
    switch (attr) {
    case AT_low_pc: case AT_high_pc: case AT_ranges: case AT_name: case AT_linkage_name:
    case AT_MIPS_linkage_name: case AT_abstract_origin: case AT_specification: case AT_call_file:
    case AT_call_line:
        return 1;
    default:
        return 0;
    }
}

static int is_ref_form(uint64_t form) {
    /* dies.py follows DW_AT_sibling of the forms named DW_FORM_ref* */
    switch (form) {
    case FORM_ref1: case FORM_ref2: case FORM_ref4: case FORM_ref8: case FORM_ref_udata:
    case FORM_ref_addr: case FORM_ref_sig8: case FORM_ref_sup4: case FORM_ref_sup8:
        return 1;
    default:
        return 0;
    }
}

/* ---- output records ------------------------------------------------------- */

typedef struct {
    uint64_t *out;
    size_t cap, n;
    int full;
} sink;

static void put(sink *s, uint64_t v) {
    if (s->n < s->cap)
        s->out[s->n] = v;
    else
        s->full = 1;
    s->n++;
}

/* Reads one DIE's attributes at the cursor; writes a record unless
 * `emit` is 0.  low/high/ranges: what visit() needs to decide (first
 * occurrences, as ScannedDIE.get finds). */
typedef struct {
    int has_low, has_high, has_ranges;
    uint64_t low_form, high_form, low, high;
    uint64_t sibling;
    int has_sibling;
} die_facts;

static void read_attrs(cursor *c, const ppd_unit *u, const ppd_abbrev_table *t, const abbrev *a,
                       int everything, sink *s, size_t count_at, die_facts *f) {
    uint64_t n = 0;
    for (uint32_t k = 0; k < a->count && !c->bad; k++) {
        const spec *sp = &t->specs[a->first + k];
        uint64_t v = read_form(c, u, sp->form, sp->implicit);
        if (c->bad)
            return;
        if (sp->attr == AT_sibling && is_ref_form(sp->form)) {
            /* the last one wins, as in dies.py */
            f->has_sibling = form_has_value(sp->form);
            f->sibling = v;
        }
        if (s && (everything || is_wanted_attr(sp->attr))) {
            put(s, sp->attr);
            put(s, sp->form);
            put(s, form_has_value(sp->form) ? v : 0);
            n++;
        }
        if (sp->attr == AT_low_pc && !f->has_low) {
            f->has_low = 1, f->low_form = sp->form, f->low = v;
        } else if (sp->attr == AT_high_pc && !f->has_high) {
            f->has_high = 1, f->high_form = sp->form, f->high = v;
        } else if (sp->attr == AT_ranges) {
            f->has_ranges = 1;
        }
    }
    if (s && count_at < s->cap)
        s->out[count_at] = n;
}

static int unit_ok(const ppd_unit *u) {
    return u->info && u->end <= u->info_len && (u->offset_size == 4 || u->offset_size == 8) &&
           u->address_size >= 1 && u->address_size <= 8;
}

PPD_EXPORT long ppd_decode_die(const ppd_unit *u, const ppd_abbrev_table *t, uint64_t die_offset,
                               int everything, uint64_t *out, size_t out_cap) {
    if (!unit_ok(u) || die_offset >= u->info_len)
        return PPD_E_DAMAGED;
    cursor c = {u->info, u->info_len, (size_t)die_offset, 0, u->little_endian};
    const abbrev *a = lookup(t, rd_uleb(&c));
    if (c.bad || !a)
        return PPD_E_DAMAGED;
    sink s = {out, out_cap, 0, 0};
    die_facts f = {0};
    put(&s, die_offset);
    put(&s, 0);
    put(&s, a->tag);
    put(&s, a->has_children);
    put(&s, 0);
    read_attrs(&c, u, t, a, everything, &s, 4, &f);
    if (c.bad)
        return PPD_E_DAMAGED;
    return s.full ? PPD_E_NOSPACE : (long)s.n;
}

/* Whether a function DIE's own ranges are decided here (see ppd_scan_unit). */
enum { RANGE_UNDECIDED, RANGE_NONE, RANGE_HOLDS_WANTED, RANGE_NOT_WANTED };

static int range_verdict(const die_facts *f, const uint64_t *wanted, size_t n_wanted) {
    if (f->has_low && f->has_high) {
        if (f->low_form != FORM_addr)
            return RANGE_UNDECIDED;
        uint64_t lo = f->low, hi;
        switch (f->high_form) {
        case FORM_addr:
            hi = f->high;
            break;
        case FORM_data1: case FORM_data2: case FORM_data4: case FORM_data8: case FORM_udata:
            hi = lo + f->high;
            if (hi < lo)
                return RANGE_UNDECIDED;     /* Python's integers do not wrap */
            break;
        default:
            return RANGE_UNDECIDED;
        }
        if (hi <= lo)
            return RANGE_NONE;
        size_t i = lower_bound(wanted, n_wanted, lo);
        return i < n_wanted && wanted[i] < hi ? RANGE_HOLDS_WANTED : RANGE_NOT_WANTED;
    }
    return f->has_ranges ? RANGE_UNDECIDED : RANGE_NONE;
}

typedef struct {
    uint8_t walk;        /* 0: inside a subtree we skip */
    uint64_t parent;     /* record of the enclosing function + 1, 0 for none */
} frame;

PPD_EXPORT long ppd_scan_unit(const ppd_unit *u, const ppd_abbrev_table *t, uint64_t die_offset,
                              const uint64_t *wanted, size_t n_wanted, uint64_t *out, size_t out_cap) {
    if (!unit_ok(u) || die_offset >= u->info_len)
        return PPD_E_DAMAGED;
    cursor c = {u->info, u->info_len, (size_t)die_offset, 0, u->little_endian};
    sink s = {out, out_cap, 0, 0};
    die_facts f = {0};
    /* the unit DIE itself: its children are what we walk */
    const abbrev *a = lookup(t, rd_uleb(&c));
    if (c.bad || !a)
        return PPD_E_DAMAGED;
    read_attrs(&c, u, t, a, 0, NULL, 0, &f);
    if (c.bad)
        return PPD_E_DAMAGED;
    if (!a->has_children)
        return 0;
    size_t depth = 0, cap = 64;
    frame *stack = malloc(cap * sizeof *stack);
    if (!stack)
        return PPD_E_NOMEM;
    stack[depth++] = (frame){1, 0};
    long rc = 0;
    while (c.pos < u->end && depth) {
        uint64_t offset = c.pos;
        uint64_t code = rd_uleb(&c);
        if (c.bad)
            break;
        if (code == 0) {
            depth--;
            continue;
        }
        a = lookup(t, code);
        if (!a) {
            c.bad = 1;
            break;
        }
        frame top = stack[depth - 1];
        frame push = {0, 0};
        int do_push = 0;
        memset(&f, 0, sizeof f);
        if (top.walk && (a->tag == TAG_subprogram || a->tag == TAG_inlined_subroutine)) {
            /* read into a tentative record; keep it unless visit() would drop it */
            size_t at = s.n;
            put(&s, offset);
            put(&s, top.parent);
            put(&s, a->tag);
            put(&s, a->has_children);
            put(&s, 0);
            read_attrs(&c, u, t, a, 0, &s, at + 4, &f);
            if (c.bad)
                break;
            int verdict = range_verdict(&f, wanted, n_wanted);
            if (verdict == RANGE_UNDECIDED || verdict == RANGE_HOLDS_WANTED) {
                push = (frame){1, at + 1};
            } else {
                s.n = at;                       /* drop the record */
                if (s.full && s.n <= s.cap)
                    s.full = 0;
                if (verdict == RANGE_NONE && top.parent)
                    push = (frame){1, top.parent};   /* children belong to the parent */
                else
                    push = (frame){0, top.parent};
            }
            do_push = a->has_children;
        } else {
            read_attrs(&c, u, t, a, 0, NULL, 0, &f);
            if (c.bad)
                break;
            if (!a->has_children)
                continue;
            if (top.walk && (a->tag == TAG_lexical_block || a->tag == TAG_namespace || a->tag == TAG_try_block ||
                             a->tag == TAG_catch_block || a->tag == TAG_module)) {
                push = (frame){1, top.parent};
                do_push = 1;
            } else if (f.has_sibling && f.sibling > c.pos) {
                /* a sibling past the unit's end ends the walk, as in dies.py */
                c.pos = (size_t)(f.sibling < u->end ? f.sibling : u->end);
            } else {
                push = (frame){0, top.parent};
                do_push = 1;
            }
        }
        if (do_push) {
            if (depth == cap) {
                frame *grown = realloc(stack, 2 * cap * sizeof *grown);
                if (!grown) {
                    rc = PPD_E_NOMEM;
                    break;
                }
                stack = grown;
                cap *= 2;
            }
            stack[depth++] = push;
        }
    }
    free(stack);
    if (rc)
        return rc;
    if (c.bad)
        return PPD_E_DAMAGED;
    return s.full ? PPD_E_NOSPACE : (long)s.n;
}
