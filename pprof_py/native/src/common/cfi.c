/* DWARF call-frame unwinding of one frame (see cfi.h). */
#include "cfi.h"

#include <string.h>

/* Functions that read other frames' stack memory are exempt from
 * AddressSanitizer, whose redzones would turn legitimate reads of live
 * stack words into reports. */
#if defined(__SANITIZE_ADDRESS__)
#define CFI_NO_ASAN __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CFI_NO_ASAN __attribute__((no_sanitize_address))
#endif
#endif
#ifndef CFI_NO_ASAN
#define CFI_NO_ASAN
#endif

#if defined(__x86_64__)

/* Pointer encodings (DW_EH_PE_*). */
#define PE_OMIT 0xff
#define PE_FORMAT 0x0f
#define PE_APPLY 0x70
#define PE_ABSPTR 0x00
#define PE_ULEB128 0x01
#define PE_UDATA2 0x02
#define PE_UDATA4 0x03
#define PE_UDATA8 0x04
#define PE_SLEB128 0x09
#define PE_SDATA2 0x0a
#define PE_SDATA4 0x0b
#define PE_SDATA8 0x0c
#define PE_PCREL 0x10
#define PE_DATAREL 0x30
#define PE_INDIRECT 0x80

/* DWARF register numbers on x86_64. */
#define REG_RBP_DW 6
#define REG_RSP_DW 7
#define REG_RA_DW 16

static int read_hdr_word(const uint8_t *p, int enc, uintptr_t *value) {
  /* only the 4-byte forms appear in .eh_frame_hdr headers in practice */
  int32_t v;
  memcpy(&v, p, 4);
  if ((enc & PE_FORMAT) == PE_SDATA4) *value = (uintptr_t)(intptr_t)v;
  else if ((enc & PE_FORMAT) == PE_UDATA4) *value = (uint32_t)v;
  else return 0;
  return 1;
}

int pp_cfi_parse_hdr(uintptr_t hdr, uintptr_t *table, uintptr_t *count) {
  /* .eh_frame_hdr: version 1, eh_frame_ptr encoding, fde_count encoding,
   * table encoding, eh_frame_ptr, fde_count, then fde_count pairs of
   * (initial location, FDE address).  We use the table only in its usual
   * form: both values 4-byte signed offsets from the header (datarel). */
  const uint8_t *h = (const uint8_t *)hdr;
  uintptr_t ignored;
  if (h[0] != 1 || h[3] != (PE_DATAREL | PE_SDATA4)) return 0;
  if (!read_hdr_word(h + 4, h[1], &ignored) || !read_hdr_word(h + 8, h[2], count)) return 0;
  if (*count == 0 || *count > (1u << 26)) return 0;
  *table = hdr + 12;
  return 1;
}

/* ------------------------------------------------------- bounded reader */

struct cursor {
  const uint8_t *p, *end;
  int ok;
};

static inline int has(struct cursor *c, size_t n) {
  if (!c->ok || (size_t)(c->end - c->p) < n) {
    c->ok = 0;
    return 0;
  }
  return 1;
}

static uint8_t rd_u8(struct cursor *c) {
  if (!has(c, 1)) return 0;
  return *c->p++;
}

static uint64_t rd_fixed(struct cursor *c, size_t n) {
  uint64_t v = 0;
  if (!has(c, n)) return 0;
  memcpy(&v, c->p, n); /* little-endian */
  c->p += n;
  return v;
}

static uint64_t rd_uleb(struct cursor *c) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = rd_u8(c);
    if (!c->ok) return 0;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  c->ok = 0;
  return 0;
}

static int64_t rd_sleb(struct cursor *c) {
  int64_t v = 0;
  int shift = 0;
  uint8_t b;
  do {
    b = rd_u8(c);
    if (!c->ok || shift >= 64) {
      c->ok = 0;
      return 0;
    }
    v |= (int64_t)(b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
  return v;
}

/* An encoded pointer (pcrel relative to the field itself).  Indirect and
 * text/data/func-relative forms do not occur in FDE addresses on x86_64
 * Linux; they fail the cursor. */
static uintptr_t rd_encoded(struct cursor *c, int enc) {
  const uint8_t *field = c->p;
  uint64_t v;
  switch (enc & PE_FORMAT) {
    case PE_ABSPTR: v = rd_fixed(c, 8); break;
    case PE_ULEB128: v = rd_uleb(c); break;
    case PE_UDATA2: v = rd_fixed(c, 2); break;
    case PE_UDATA4: v = rd_fixed(c, 4); break;
    case PE_UDATA8: v = rd_fixed(c, 8); break;
    case PE_SLEB128: v = (uint64_t)rd_sleb(c); break;
    case PE_SDATA2: v = (uint64_t)(int64_t)(int16_t)rd_fixed(c, 2); break;
    case PE_SDATA4: v = (uint64_t)(int64_t)(int32_t)rd_fixed(c, 4); break;
    case PE_SDATA8: v = rd_fixed(c, 8); break;
    default: c->ok = 0; return 0;
  }
  if (enc & PE_INDIRECT) {
    c->ok = 0;
    return 0;
  }
  switch (enc & PE_APPLY) {
    case 0: break;
    case PE_PCREL: v += (uintptr_t)field; break;
    default: c->ok = 0; return 0;
  }
  return (uintptr_t)v;
}

/* Size of a value in the given encoding's format, for skipping it. */
static void skip_encoded(struct cursor *c, int enc) {
  switch (enc & PE_FORMAT) {
    case PE_ABSPTR: case PE_UDATA8: case PE_SDATA8: rd_fixed(c, 8); break;
    case PE_UDATA2: case PE_SDATA2: rd_fixed(c, 2); break;
    case PE_UDATA4: case PE_SDATA4: rd_fixed(c, 4); break;
    case PE_ULEB128: rd_uleb(c); break;
    case PE_SLEB128: rd_sleb(c); break;
    default: c->ok = 0;
  }
}

/* ---------------------------------------------------------- CFI program */

enum { RULE_SAME = 0, RULE_UNDEF, RULE_OFFSET, RULE_VAL_OFFSET, RULE_BAD };

struct rule {
  int kind;
  int64_t off;
};

struct row {
  int cfa_reg;       /* -1: not a register + offset rule */
  int64_t cfa_off;
  struct rule rbp, ra;
  struct rule callee_saved[PP_CFI_SAVED_REGS]; /* rbx, r12-r15 (zero: same value) */
};

struct cie_info {
  uint64_t code_align;
  int64_t data_align;
  uint64_t ra_reg;
  int fde_enc;
  int has_z;
  struct cursor insns; /* initial instructions */
};

static struct rule *rule_for(struct row *r, uint64_t reg, uint64_t ra_reg) {
  if (reg == REG_RBP_DW) return &r->rbp;
  if (reg == ra_reg) return &r->ra;
  if (reg == 3) return &r->callee_saved[0];                  /* rbx */
  if (reg >= 12 && reg <= 15) return &r->callee_saved[reg - 11]; /* r12-r15 */
  return NULL;
}

/* Sets reg's rule (if it is one we track) to kind with offset off. */
static void set_rule(struct row *r, uint64_t reg, uint64_t ra_reg, int kind, int64_t off) {
  struct rule *rl = rule_for(r, reg, ra_reg);
  if (rl) {
    rl->kind = kind;
    rl->off = off;
  }
}

#define STATE_STACK 8

/* Runs instructions from `c`, starting at code address *loc, until the
 * next row would start past `target`.  Returns 0 when it cannot go on. */
static int run_cfa(struct cursor *c, const struct cie_info *cie, const struct row *initial,
                   struct row *r, uintptr_t *loc, uintptr_t target) {
  struct row stack[STATE_STACK];
  int depth = 0;
  while (c->p < c->end) {
    uint8_t op = rd_u8(c);
    uint8_t low = op & 0x3f;
    uint64_t reg;
    int64_t off;
    struct rule *rl;
    switch (op >> 6) {
      case 1: /* DW_CFA_advance_loc */
        *loc += low * cie->code_align;
        if (*loc > target) return 1;
        continue;
      case 2: /* DW_CFA_offset */
        off = (int64_t)rd_uleb(c) * cie->data_align;
        set_rule(r, low, cie->ra_reg, RULE_OFFSET, off);
        continue;
      case 3: /* DW_CFA_restore */
        if ((rl = rule_for(r, low, cie->ra_reg))) *rl = *rule_for((struct row *)initial, low, cie->ra_reg);
        continue;
    }
    switch (op) {
      case 0x00: break;                                            /* nop */
      case 0x02: *loc += rd_fixed(c, 1) * cie->code_align; if (*loc > target) return 1; break;
      case 0x03: *loc += rd_fixed(c, 2) * cie->code_align; if (*loc > target) return 1; break;
      case 0x04: *loc += rd_fixed(c, 4) * cie->code_align; if (*loc > target) return 1; break;
      case 0x05:                                                   /* offset_extended */
        reg = rd_uleb(c);
        off = (int64_t)rd_uleb(c) * cie->data_align;
        set_rule(r, reg, cie->ra_reg, RULE_OFFSET, off);
        break;
      case 0x06:                                                   /* restore_extended */
        reg = rd_uleb(c);
        if ((rl = rule_for(r, reg, cie->ra_reg))) *rl = *rule_for((struct row *)initial, reg, cie->ra_reg);
        break;
      case 0x07:                                                   /* undefined */
        if ((rl = rule_for(r, rd_uleb(c), cie->ra_reg))) rl->kind = RULE_UNDEF;
        break;
      case 0x08:                                                   /* same_value */
        if ((rl = rule_for(r, rd_uleb(c), cie->ra_reg))) rl->kind = RULE_SAME;
        break;
      case 0x09:                                                   /* register */
        reg = rd_uleb(c);
        rd_uleb(c);
        if ((rl = rule_for(r, reg, cie->ra_reg))) rl->kind = RULE_BAD;
        break;
      case 0x0a:                                                   /* remember_state */
        if (depth >= STATE_STACK) return 0;
        stack[depth++] = *r;
        break;
      case 0x0b:                                                   /* restore_state */
        if (depth == 0) return 0;
        /* the whole row, CFA rule included, as GCC's own unwinder does:
           compilers bracket epilogues with remember/restore and expect the
           CFA to come back too */
        *r = stack[--depth];
        break;
      case 0x0c:                                                   /* def_cfa */
        r->cfa_reg = (int)rd_uleb(c);
        r->cfa_off = (int64_t)rd_uleb(c);
        break;
      case 0x0d:                                                   /* def_cfa_register */
        r->cfa_reg = (int)rd_uleb(c);
        break;
      case 0x0e:                                                   /* def_cfa_offset */
        r->cfa_off = (int64_t)rd_uleb(c);
        break;
      case 0x0f:                                                   /* def_cfa_expression */
        r->cfa_reg = -1;
        off = (int64_t)rd_uleb(c);
        if (!has(c, (size_t)off)) return 0;
        c->p += off;
        break;
      case 0x10:                                                   /* expression */
      case 0x16:                                                   /* val_expression */
        reg = rd_uleb(c);
        off = (int64_t)rd_uleb(c);
        if (!has(c, (size_t)off)) return 0;
        c->p += off;
        if ((rl = rule_for(r, reg, cie->ra_reg))) rl->kind = RULE_BAD;
        break;
      case 0x11:                                                   /* offset_extended_sf */
        reg = rd_uleb(c);
        off = rd_sleb(c) * cie->data_align;
        set_rule(r, reg, cie->ra_reg, RULE_OFFSET, off);
        break;
      case 0x12:                                                   /* def_cfa_sf */
        r->cfa_reg = (int)rd_uleb(c);
        r->cfa_off = rd_sleb(c) * cie->data_align;
        break;
      case 0x13:                                                   /* def_cfa_offset_sf */
        r->cfa_off = rd_sleb(c) * cie->data_align;
        break;
      case 0x14:                                                   /* val_offset */
      case 0x15:                                                   /* val_offset_sf */
        reg = rd_uleb(c);
        off = op == 0x14 ? (int64_t)rd_uleb(c) * cie->data_align : rd_sleb(c) * cie->data_align;
        set_rule(r, reg, cie->ra_reg, RULE_VAL_OFFSET, off);
        break;
      case 0x2e: rd_uleb(c); break;                                /* GNU_args_size */
      case 0x2f:                                                   /* GNU_negative_offset_extended */
        reg = rd_uleb(c);
        off = -(int64_t)rd_uleb(c) * cie->data_align;
        set_rule(r, reg, cie->ra_reg, RULE_OFFSET, off);
        break;
      default:                                                     /* set_loc, vendor ops */
        return 0;
    }
    if (!c->ok) return 0;
  }
  return c->ok;
}

/* A CIE at `p` (already checked readable for `len` bytes). */
static int parse_cie(const uint8_t *p, size_t len, struct cie_info *cie) {
  struct cursor c = {p, p + len, 1};
  uint8_t version = rd_u8(&c);
  if (version != 1 && version != 3) return 0;
  const char *aug = (const char *)c.p;
  size_t alen = 0;
  while (alen < 16 && has(&c, alen + 1) && aug[alen]) alen++;
  if (alen >= 16 || !has(&c, alen + 1)) return 0;
  c.p += alen + 1;
  cie->code_align = rd_uleb(&c);
  cie->data_align = rd_sleb(&c);
  cie->ra_reg = version == 1 ? rd_u8(&c) : rd_uleb(&c);
  cie->fde_enc = PE_ABSPTR;
  cie->has_z = aug[0] == 'z';
  if (cie->has_z) {
    uint64_t zlen = rd_uleb(&c);
    if (!has(&c, zlen)) return 0;
    const uint8_t *zend = c.p + zlen;
    for (size_t i = 1; i < alen && c.ok; i++) {
      switch (aug[i]) {
        case 'R': cie->fde_enc = rd_u8(&c); break;
        case 'L': rd_u8(&c); break;
        case 'P': {
          int enc = rd_u8(&c);
          skip_encoded(&c, enc);
          break;
        }
        case 'S': break;
        default: c.p = zend; i = alen; break; /* unknown: the length lets us skip */
      }
    }
    c.p = zend;
  } else if (alen != 0) {
    return 0; /* "eh" and other old forms */
  }
  if (!c.ok) return 0;
  cie->insns = c;
  return 1;
}

/* Address of the FDE whose function may contain pc, or 0. */
static uintptr_t find_fde(const struct pp_cfi_source *o, uintptr_t pc) {
  size_t bytes = o->count * 8;
  if (!o->readable(o->ctx, o->table, bytes)) return 0;
  const int32_t *t = (const int32_t *)o->table;
  intptr_t rel = (intptr_t)(pc - o->hdr);
  if (rel < INT32_MIN || rel > INT32_MAX) return 0;
  size_t a = 0, b = o->count;
  if (t[0] > rel) return 0;
  while (b - a > 1) { /* last entry with initial location <= pc */
    size_t m = (a + b) / 2;
    if (t[2 * m] <= rel) a = m;
    else b = m;
  }
  return o->hdr + (intptr_t)t[2 * a + 1];
}

/* Readable length-prefixed record at p: returns its body length, 0 if not
 * usable (unreadable, 64-bit DWARF, terminator). */
static size_t record_at(const struct pp_cfi_source *src, uintptr_t p) {
  if (!src->readable(src->ctx, p, 4)) return 0;
  uint32_t len;
  memcpy(&len, (const void *)p, 4);
  if (len == 0 || len >= 0xfffffff0u) return 0;
  if (!src->readable(src->ctx, p, 4 + (size_t)len)) return 0;
  return len;
}

CFI_NO_ASAN static inline int stack_word(uintptr_t addr, uintptr_t lo, uintptr_t hi, uintptr_t *out) {
  if ((addr & 7) != 0 || addr < lo || addr > hi - sizeof(uintptr_t)) return 0;
  *out = *(const uintptr_t *)addr;
  return 1;
}

int pp_cfi_row(const struct pp_cfi_source *src, uintptr_t pc, int exact, struct pp_cfi_row *out) {
  /* A return address points after the call: look up the call itself. */
  uintptr_t where = exact ? pc : pc - 1;
  uintptr_t fde = find_fde(src, where);
  if (!fde) return 0;
  size_t flen = record_at(src, fde);
  if (!flen) return 0;
  struct cursor c = {(const uint8_t *)fde + 4, (const uint8_t *)fde + 4 + flen, 1};
  uint32_t cie_off = (uint32_t)rd_fixed(&c, 4);
  if (cie_off == 0) return 0; /* a CIE, not an FDE */
  uintptr_t cie_addr = fde + 4 - cie_off;
  size_t clen = record_at(src, cie_addr);
  if (!clen) return 0;
  uint32_t cie_id;
  memcpy(&cie_id, (const void *)(cie_addr + 4), 4);
  if (cie_id != 0) return 0;
  struct cie_info cie;
  if (!parse_cie((const uint8_t *)cie_addr + 8, clen - 4, &cie)) return 0;
  uintptr_t start = rd_encoded(&c, cie.fde_enc);
  uintptr_t range = rd_encoded(&c, cie.fde_enc & PE_FORMAT);
  if (!c.ok || where < start || where - start >= range) return 0;
  if (cie.has_z) {
    uint64_t zlen = rd_uleb(&c);
    if (!has(&c, zlen)) return 0;
    c.p += zlen;
  }
  struct row r = {REG_RSP_DW, 8, {RULE_SAME, 0}, {RULE_UNDEF, 0}};
  uintptr_t loc = start;
  struct cursor ci = cie.insns;
  if (!run_cfa(&ci, &cie, &r, &r, &loc, where)) return 0;
  struct row initial = r;
  loc = start;
  if (!run_cfa(&c, &cie, &initial, &r, &loc, where)) return 0;

  /* only what the walk can evaluate: CFA from rsp or rbp, and offsets
     that fit the compact row */
  if (r.cfa_reg != REG_RSP_DW && r.cfa_reg != REG_RBP_DW) return 0;
  if (r.ra.kind != RULE_UNDEF && r.ra.kind != RULE_OFFSET) return 0;
  if (r.rbp.kind == RULE_BAD || r.rbp.kind == RULE_UNDEF) return 0;
  if (r.cfa_off != (int32_t)r.cfa_off || r.ra.off != (int32_t)r.ra.off || r.rbp.off != (int32_t)r.rbp.off)
    return 0;
  out->cfa_from_rbp = r.cfa_reg == REG_RBP_DW;
  out->outermost = r.ra.kind == RULE_UNDEF;
  out->rbp_rule = r.rbp.kind == RULE_OFFSET ? PP_CFI_RBP_SAVED
                : r.rbp.kind == RULE_VAL_OFFSET ? PP_CFI_RBP_VALUE : PP_CFI_RBP_SAME;
  out->cfa_off = (int32_t)r.cfa_off;
  out->ra_off = (int32_t)r.ra.off;
  out->rbp_off = (int32_t)r.rbp.off;
  out->saved_mask = out->unknown_mask = 0;
  for (int i = 0; i < PP_CFI_SAVED_REGS; i++) {
    const struct rule *cs = &r.callee_saved[i];
    out->saved_off[i] = 0;
    if (cs->kind == RULE_SAME) continue;
    if (cs->kind == RULE_OFFSET && cs->off == (int32_t)cs->off) {
      out->saved_mask |= (uint8_t)(1u << i);
      out->saved_off[i] = (int32_t)cs->off;
    } else {
      out->unknown_mask |= (uint8_t)(1u << i);
    }
  }
  return 1;
}

CFI_NO_ASAN int pp_cfi_apply(const struct pp_cfi_row *r, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp,
                             uintptr_t lo, uintptr_t hi) {
  if (r->outermost) return -1; /* return address undefined: _start, thread start */
  uintptr_t cfa = (r->cfa_from_rbp ? *fp : *sp) + (uintptr_t)(intptr_t)r->cfa_off;
  if (cfa <= *sp || cfa > hi) return -1;
  uintptr_t ra, rbp = *fp;
  if (!stack_word(cfa + (uintptr_t)(intptr_t)r->ra_off, lo, hi, &ra)) return 0;
  if (r->rbp_rule == PP_CFI_RBP_SAVED) {
    /* In an epilogue, compilers describe each pop as a CFA change only:
     * the row still says rbp is saved at CFA + off although the pop has
     * already put it back in the register, and the slot now lies below
     * the stack pointer (free for a signal frame to overwrite).  Then
     * the register (from the signal context, for the interrupted frame)
     * is the caller's value. */
    uintptr_t slot = cfa + (uintptr_t)(intptr_t)r->rbp_off;
    if (slot >= *sp && !stack_word(slot, lo, hi, &rbp)) return 0;
  } else if (r->rbp_rule == PP_CFI_RBP_VALUE) {
    rbp = cfa + (uintptr_t)(intptr_t)r->rbp_off;
  }
  *pc = ra;
  *sp = cfa;
  *fp = rbp;
  return 1;
}

int pp_cfi_step(const struct pp_cfi_source *src, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, int exact,
                uintptr_t lo, uintptr_t hi) {
  struct pp_cfi_row row;
  if (!pp_cfi_row(src, *pc, exact, &row)) return 0;
  return pp_cfi_apply(&row, pc, sp, fp, lo, hi);
}

#else /* !__x86_64__: frame pointers only */

int pp_cfi_parse_hdr(uintptr_t hdr, uintptr_t *table, uintptr_t *count) {
  (void)hdr; (void)table; (void)count;
  return 0;
}

int pp_cfi_row(const struct pp_cfi_source *src, uintptr_t pc, int exact, struct pp_cfi_row *out) {
  (void)src; (void)pc; (void)exact; (void)out;
  return 0;
}

int pp_cfi_apply(const struct pp_cfi_row *r, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, uintptr_t lo,
                 uintptr_t hi) {
  (void)r; (void)pc; (void)sp; (void)fp; (void)lo; (void)hi;
  return 0;
}

int pp_cfi_step(const struct pp_cfi_source *src, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, int exact,
                uintptr_t lo, uintptr_t hi) {
  (void)src; (void)pc; (void)sp; (void)fp; (void)exact; (void)lo; (void)hi;
  return 0;
}

#endif
