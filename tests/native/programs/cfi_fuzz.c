/* Fuzzer for the DWARF call-frame decoder (pprof_py/native/src/common/cfi.c),
 * built with AddressSanitizer and UBSan by tests/native/test_cfi_fuzz.py.
 *
 *   cfi_fuzz ITERATIONS SEED
 *
 * The decoder runs inside signal handlers and malloc on tables it finds in
 * memory, so it must never read outside what its `readable` callback
 * allows, nor outside the stack bounds it is given, whatever the bytes.
 * Inputs: this program's own .eh_frame_hdr and .eh_frame (real tables),
 * copied into a heap buffer of exactly their size and mutated a few bytes at
 * a time, and buffers of random bytes behind a well-formed header; PCs are
 * function starts from the table plus a random offset, or random; the stack
 * is a heap array of random words, some pointing into it.  Any read past a
 * buffer is an ASan report and a non-zero exit.  Prints the number of steps
 * that unwound a frame, so the test can check the real tables worked.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfi.h"

static uint64_t rng;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

struct region {
  uintptr_t lo, hi;
};

static int readable(const void *ctx, uintptr_t addr, size_t len) {
  const struct region *r = ctx;
  return addr >= r->lo && addr <= r->hi && len <= r->hi - addr;
}

static uintptr_t own_hdr, own_end;

static int find_own(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  uintptr_t hdr = 0;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME) hdr = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
  if (!hdr) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && hdr >= a && hdr < a + ph->p_filesz) {
      own_hdr = hdr;
      own_end = a + ph->p_filesz;
      return 1; /* the first object is the program itself */
    }
  }
  return 1;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 100000;
  rng = argc > 2 ? strtoull(argv[2], NULL, 10) * 2 + 1 : 88172645463325252ull;
  dl_iterate_phdr(find_own, NULL);
  if (!own_hdr) {
    fprintf(stderr, "no .eh_frame_hdr in this program\n");
    return 2;
  }
  size_t len = own_end - own_hdr;
  uint8_t *pristine = malloc(len);
  memcpy(pristine, (const void *)own_hdr, len);
  uintptr_t table0, count0;
  if (!pp_cfi_parse_hdr(own_hdr, &table0, &count0)) {
    fprintf(stderr, "own .eh_frame_hdr not in the usual form\n");
    return 2;
  }
  enum { STACK_WORDS = 64 };
  long unwound = 0;
  for (long it = 0; it < iterations; it++) {
    uint8_t *buf = malloc(len);
    int random_body = next() % 8 == 0;
    memcpy(buf, pristine, random_body ? 12 + count0 * 8 : len);
    if (random_body)
      for (size_t i = 12 + count0 * 8; i < len; i++) buf[i] = (uint8_t)next();
    int flips = (int)(next() % 9);
    for (int f = 0; f < flips; f++) {
      size_t at = next() % len;
      buf[at] = (uint8_t)(next() % 3 == 0 ? 0xff : next());
    }
    struct region r = {(uintptr_t)buf, (uintptr_t)buf + len};
    uintptr_t table, count;
    if (!pp_cfi_parse_hdr((uintptr_t)buf, &table, &count) || table + count * 8 > r.hi) {
      free(buf);
      continue;
    }
    struct pp_cfi_source src = {(uintptr_t)buf, table, count, readable, &r};
    uintptr_t *stack = malloc(STACK_WORDS * sizeof(uintptr_t));
    uintptr_t lo = (uintptr_t)stack, hi = lo + STACK_WORDS * sizeof(uintptr_t);
    for (int i = 0; i < STACK_WORDS; i++)
      stack[i] = next() % 2 ? lo + (next() % STACK_WORDS) * 8 : (uintptr_t)next();
    /* a PC: a function start from the (pristine) table plus up to 256
       bytes, relative to the copy, or anything */
    const int32_t *t = (const int32_t *)(pristine + 12);
    uintptr_t pc = next() % 4 ? (uintptr_t)buf + (intptr_t)t[2 * (next() % count0)] + next() % 256
                              : (uintptr_t)next();
    uintptr_t sp = lo + (next() % 16) * 8, fp = next() % 2 ? lo + (next() % STACK_WORDS) * 8 : next();
    for (int depth = 0; depth < 8; depth++) {
      int exact = depth == 0 && next() % 2;
      int rc = pp_cfi_step(&src, &pc, &sp, &fp, exact, lo, hi);
      if (rc <= 0) break;
      unwound++;
    }
    free(stack);
    free(buf);
  }
  printf("unwound=%ld\n", unwound);
  free(pristine);
  return 0;
}
