/* The DWARF decoders of libdwarf (pprof_py/native/src/dwarf/), called from
 * Python with ctypes (pprof_py/symbolize/dwarfnative.py) to speed up a cold
 * symbolization: the line-number state machine and the walk over a compile
 * unit's DIEs.  Python's pprof_py/symbolize/dwarf.py and dies.py hold the
 * reference implementations; tests/symbolize/test_dwarf_native.py checks
 * that both give the same answers.
 *
 * Every function reads only inside the buffers it is given and returns a
 * PPD_E_* code (< 0) on input it cannot read, never crashing: the caller
 * treats that as damaged debug info.  No function keeps a pointer to the
 * caller's buffers after it returns, except an abbreviation table, which
 * holds none (it copies what it parses).
 */
#ifndef PPROF_PY_DWARFSCAN_H
#define PPROF_PY_DWARFSCAN_H

#include <stddef.h>
#include <stdint.h>

#define PPD_EXPORT __attribute__((visibility("default")))

enum {
    PPD_OK = 0,
    PPD_E_DAMAGED = -1,      /* truncated LEB128, offset past the end, unknown form or code, ... */
    PPD_E_UNSUPPORTED = -2,  /* valid but not handled here (huge abbreviation codes): use Python */
    PPD_E_NOSPACE = -3,      /* the output buffer is too small: call again with a bigger one */
    PPD_E_NOMEM = -4,        /* malloc failed */
};

/* ---- line tables (DWARF 2-5, section 6.2) ---------------------------------
 * Runs the line-number program `prog` (the opcodes after the header) and,
 * for each of the `n_wanted` addresses in `wanted` (sorted ascending),
 * stores the row addr2line prints: from the sequence with the greatest
 * start that contains it (the later one in the program on ties), the last
 * row at the greatest row address <= it (of several rows at one address,
 * the last).  found[i] is 0 when no sequence contains wanted[i].
 * std_lengths has opcode_base - 1 entries (operand counts of the standard
 * opcodes).  line_range 0 is damage.  Returns PPD_OK or an error. */
PPD_EXPORT int ppd_line_lookup(const uint8_t *prog, size_t len, int version, int little_endian,
                               unsigned min_inst, int line_base, unsigned line_range,
                               unsigned opcode_base, const uint8_t *std_lengths,
                               const uint64_t *wanted, size_t n_wanted,
                               uint64_t *out_file, int64_t *out_line, uint8_t *found);

/* ---- .debug_abbrev (section 7.5.3) ---------------------------------------
 * Parses the abbreviation table at `offset` of the section `data`; returns
 * NULL and sets *err on failure.  Free it with ppd_abbrev_free. */
typedef struct ppd_abbrev_table ppd_abbrev_table;
PPD_EXPORT ppd_abbrev_table *ppd_abbrev_parse(const uint8_t *data, size_t len, size_t offset, int *err);
PPD_EXPORT void ppd_abbrev_free(ppd_abbrev_table *table);

/* The unit being read: .debug_info bytes and the header fields the forms'
 * sizes depend on.  `unit_offset` is where the unit header starts (ref1..8
 * and ref_udata are relative to it), `end` where the unit ends. */
typedef struct {
    const uint8_t *info;
    size_t info_len;
    uint64_t unit_offset;
    uint64_t end;
    int version;
    int address_size;
    int offset_size;     /* 4 (32-bit DWARF) or 8 (64-bit DWARF) */
    int little_endian;
} ppd_unit;

/* Output records, in 64-bit words:
 *   die offset, parent record + 1 (0: none), tag, has_children, n,
 *   then n triples (attribute, form, value)
 * A value is the attribute's integer (references made absolute .debug_info
 * offsets; sdata and implicit_const as two's complement), the position in
 * .debug_info of a DW_FORM_string's text, 1 for flag_present, and 0 for
 * forms whose value Python does not use (blocks, exprloc, data16, ...).
 * The parent record is the word index (in `out`) of the record + 1. */

/* Decodes the DIE at `die_offset`: with `everything`, all its attributes,
 * else those that name a function and give its ranges (dies.WANTED_ATTRS).
 * Writes one record to out; returns its length in words or an error. */
PPD_EXPORT long ppd_decode_die(const ppd_unit *unit, const ppd_abbrev_table *abbrevs, uint64_t die_offset,
                               int everything, uint64_t *out, size_t out_cap);

/* The walk of dies.UnitScanner.scan: visits the unit DIE's descendants at
 * `die_offset` (the unit DIE), descending into functions and the
 * containers of DESCEND_TAGS only, and writes a record for each
 * subprogram / inlined_subroutine DIE that Python must look at.  A function
 * whose DW_AT_low_pc (DW_FORM_addr) / DW_AT_high_pc (addr or constant)
 * range holds none of `wanted` is dropped with its subtree; one without
 * any range is dropped, its children attached to its parent function (at
 * top level it is dropped with its subtree, as dwarf.py's visit does).
 * Functions with other ranges (DW_AT_ranges, DW_FORM_addrx...) are
 * written with their subtree: Python decides and prunes.  Returns the
 * number of words written or an error. */
PPD_EXPORT long ppd_scan_unit(const ppd_unit *unit, const ppd_abbrev_table *abbrevs, uint64_t die_offset,
                              const uint64_t *wanted, size_t n_wanted, uint64_t *out, size_t out_cap);

#endif
