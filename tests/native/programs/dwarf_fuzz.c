/* Fuzzes the native DWARF decoders (pprof_py/native/src/dwarf/dwarfscan.c)
 * with mutated copies of real sections; built with AddressSanitizer and
 * UBSan by tests/native/test_dwarf_fuzz.py, so a read outside the buffers
 * the decoders were given aborts the program.
 *
 * usage: dwarf_fuzz INFO ABBREV LINE UNITS ITERATIONS SEED
 *   INFO, ABBREV, LINE: raw (decompressed) .debug_info, .debug_abbrev and
 *   .debug_line contents; UNITS: a text file of lines
 *     U unit_offset end die_offset version address_size offset_size abbrev_offset
 *     L start end version min_inst line_base line_range opcode_base lengths...
 *   (L: a line program's opcodes at LINE[start:end] and its header fields).
 * Each iteration copies one unit (rebased to offset 0) or program into a
 * buffer of its exact size, flips a few bytes, sometimes cuts it short, and runs the decoders
 * on it; the real inputs are also run unmutated, and must then succeed.
 * Prints "ok=N damaged=M" (calls that succeeded / reported damage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dwarfscan.h"

typedef struct {
    uint64_t unit_offset, end, die_offset, abbrev_offset;
    int version, address_size, offset_size;
} unit_desc;

typedef struct {
    size_t start, end;
    int version, min_inst, line_base, line_range, opcode_base;
    uint8_t lengths[256];
} line_desc;

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static uint64_t rng_state;
static uint64_t rnd(void) {          /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void mutate(uint8_t *buf, size_t lo, size_t hi) {
    if (hi <= lo)
        return;
    int flips = 1 + (int)(rnd() % 8);
    for (int i = 0; i < flips; i++) {
        size_t at = lo + rnd() % (hi - lo);
        switch (rnd() % 4) {
        case 0: buf[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
        case 1: buf[at] = (uint8_t)rnd(); break;
        case 2: buf[at] = 0xff; break;
        default: buf[at] = 0; break;
        }
    }
}

static long ok, damaged;

static void count(long rc) {
    if (rc >= 0)
        ok++;
    else if (rc == PPD_E_DAMAGED || rc == PPD_E_UNSUPPORTED || rc == PPD_E_NOSPACE)
        damaged++;
    else {
        fprintf(stderr, "unexpected error %ld\n", rc);
        exit(1);
    }
}

static uint64_t wanted[64];
static uint64_t out[1 << 16];

static void run_unit(const uint8_t *info, size_t info_len, const uint8_t *abbrev, size_t abbrev_len,
                     const unit_desc *d, int must_succeed) {
    int err = 0;
    ppd_abbrev_table *t = ppd_abbrev_parse(abbrev, abbrev_len, d->abbrev_offset, &err);
    if (!t) {
        if (must_succeed) {
            fprintf(stderr, "real abbreviation table failed: %d\n", err);
            exit(1);
        }
        count(err);
        return;
    }
    ppd_unit u = {info, info_len, d->unit_offset, d->end < info_len ? d->end : info_len,
                  d->version, d->address_size, d->offset_size, 1};
    /* wanted: sorted random addresses, some of them small (like real ones) */
    size_t n = rnd() % 64;
    uint64_t at = rnd() % 0x10000;
    for (size_t i = 0; i < n; i++) {
        at += rnd() % 0x400;
        wanted[i] = at;
    }
    long rc = ppd_scan_unit(&u, t, d->die_offset, wanted, n, out, (rnd() % 4 ? sizeof out / 8 : rnd() % 64));
    if (must_succeed && rc < 0 && rc != PPD_E_NOSPACE) {
        fprintf(stderr, "real unit at %#llx failed: %ld\n", (unsigned long long)d->unit_offset, rc);
        exit(1);
    }
    count(rc);
    count(ppd_decode_die(&u, t, d->die_offset, 1, out, sizeof out / 8));
    for (int k = 0; k < 8; k++) {
        uint64_t where = d->unit_offset + (d->end > d->unit_offset ? rnd() % (d->end - d->unit_offset + 8) : 0);
        count(ppd_decode_die(&u, t, where, (int)(rnd() & 1), out, rnd() % 2 ? sizeof out / 8 : rnd() % 16));
    }
    ppd_abbrev_free(t);
}

static void run_line(const uint8_t *prog, size_t len, const line_desc *d, int mutate_header, int must_succeed) {
    int version = d->version, min_inst = d->min_inst, line_base = d->line_base;
    unsigned line_range = (unsigned)d->line_range, opcode_base = (unsigned)d->opcode_base;
    uint8_t lengths[256];
    memcpy(lengths, d->lengths, sizeof lengths);
    if (mutate_header) {
        switch (rnd() % 5) {
        case 0: line_range = (unsigned)(rnd() % 4); break;
        case 1: opcode_base = (unsigned)(rnd() % 256); break;
        case 2: lengths[rnd() % 255] = (uint8_t)rnd(); break;
        case 3: min_inst = (int)(rnd() % 256); line_base = (int)(rnd() % 256) - 128; break;
        default: version = 2 + (int)(rnd() % 4); break;
        }
    }
    size_t n = rnd() % 64;
    uint64_t at = rnd() % 0x10000;
    for (size_t i = 0; i < n; i++) {
        at += rnd() % 0x100;
        wanted[i] = at;
    }
    static uint64_t files[64];
    static int64_t lines[64];
    static uint8_t found[64];
    int rc = ppd_line_lookup(prog, len, version, 1, (unsigned)min_inst, line_base, line_range, opcode_base,
                             lengths, wanted, n, files, lines, found);
    if (must_succeed && rc != PPD_OK) {
        fprintf(stderr, "real line program failed: %d\n", rc);
        exit(1);
    }
    count(rc);
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s INFO ABBREV LINE UNITS ITERATIONS SEED\n", argv[0]);
        return 2;
    }
    size_t info_len, abbrev_len, line_len;
    uint8_t *info = slurp(argv[1], &info_len), *abbrev = slurp(argv[2], &abbrev_len);
    uint8_t *line = slurp(argv[3], &line_len);
    long iterations = atol(argv[5]);
    rng_state = (uint64_t)atoll(argv[6]) * 0x9e3779b97f4a7c15ull + 1;

    FILE *f = fopen(argv[4], "r");
    if (!f) {
        perror(argv[4]);
        return 2;
    }
    static unit_desc units[4096];
    static line_desc progs[4096];
    size_t n_units = 0, n_progs = 0;
    char kind;
    while (fscanf(f, " %c", &kind) == 1) {
        if (kind == 'U' && n_units < 4096) {
            unit_desc *d = &units[n_units++];
            unsigned long long a, b, c, e;
            if (fscanf(f, "%llu %llu %llu %d %d %d %llu", &a, &b, &c, &d->version, &d->address_size,
                       &d->offset_size, &e) != 7)
                return 2;
            d->unit_offset = a, d->end = b, d->die_offset = c, d->abbrev_offset = e;
        } else if (kind == 'L' && n_progs < 4096) {
            line_desc *d = &progs[n_progs++];
            memset(d->lengths, 0, sizeof d->lengths);
            if (fscanf(f, "%zu %zu %d %d %d %d %d", &d->start, &d->end, &d->version, &d->min_inst,
                       &d->line_base, &d->line_range, &d->opcode_base) != 7)
                return 2;
            for (int k = 0; k < d->opcode_base - 1; k++) {
                unsigned v;
                if (fscanf(f, "%u", &v) != 1)
                    return 2;
                d->lengths[k] = (uint8_t)v;
            }
        } else {
            return 2;
        }
    }
    fclose(f);
    if (!n_units || !n_progs) {
        fprintf(stderr, "no units or line programs\n");
        return 2;
    }
    /* the real inputs first: they must decode */
    for (size_t i = 0; i < n_units; i++)
        run_unit(info, info_len, abbrev, abbrev_len, &units[i], 1);
    for (size_t i = 0; i < n_progs; i++) {
        uint8_t *copy = malloc(progs[i].end - progs[i].start + 1);
        memcpy(copy, line + progs[i].start, progs[i].end - progs[i].start);
        run_line(copy, progs[i].end - progs[i].start, &progs[i], 0, 1);
        free(copy);
    }
    long real_ok = ok;
    for (long it = 0; it < iterations; it++) {
        if (rnd() % 2) {
            const unit_desc *d = &units[rnd() % n_units];
            /* the unit alone in a buffer of exactly its size, rebased to offset 0
             * (so a read before its start is out of bounds too) */
            size_t len = (d->end <= info_len ? d->end : info_len) - d->unit_offset;
            if (rnd() % 4 == 0 && len)
                len = rnd() % len;
            uint8_t *copy = malloc(len ? len : 1);
            memcpy(copy, info + d->unit_offset, len);
            mutate(copy, 0, len);
            size_t alen = abbrev_len;
            uint8_t *acopy = malloc(alen);
            memcpy(acopy, abbrev, alen);
            if (rnd() % 3 == 0)
                mutate(acopy, d->abbrev_offset, alen);
            if (rnd() % 8 == 0 && alen > d->abbrev_offset)
                alen = d->abbrev_offset + rnd() % (alen - d->abbrev_offset);
            unit_desc cut = *d;
            cut.unit_offset = 0;
            cut.die_offset = d->die_offset - d->unit_offset;
            cut.end = d->end - d->unit_offset;
            if (rnd() % 8 == 0)
                cut.end = rnd() % (len + 16);
            run_unit(copy, len, acopy, alen, &cut, 0);
            free(copy);
            free(acopy);
        } else {
            const line_desc *d = &progs[rnd() % n_progs];
            size_t len = d->end - d->start;
            if (rnd() % 4 == 0 && len)
                len = rnd() % len;
            uint8_t *copy = malloc(len ? len : 1);
            memcpy(copy, line + d->start, len);
            mutate(copy, 0, len);
            run_line(copy, len, d, rnd() % 3 == 0, 0);
            free(copy);
        }
    }
    printf("real=%ld ok=%ld damaged=%ld\n", real_ok, ok - real_ok, damaged);
    free(info);
    free(abbrev);
    free(line);
    return 0;
}
