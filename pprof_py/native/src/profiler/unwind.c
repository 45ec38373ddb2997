/*
 * Unwind tables of the loaded objects for the CPU sampler's signal handler
 * (the decoding itself is common/cfi.c).
 *
 * Why: most programs and every distribution library are compiled without
 * frame pointers, so a frame-pointer walk stops (or wanders) at the first
 * such frame; gperftools' libprofiler links libunwind for this.
 *
 * Outside the handler, pp_unwind_collect() lists the loaded objects with
 * dl_iterate_phdr: their executable range and in-memory .eh_frame_hdr
 * search table.  The list lives in the maps snapshot (collector.c), which
 * the writer thread rebuilds as libraries come and go and swaps in only when
 * no handler can be reading the old one.  Inside the handler,
 * pp_unwind_step() finds the object holding the PC and unwinds one frame,
 * every read of unwind data checked against the snapshot of the address
 * space.
 */
#include "profiler_internal.h"

#include <link.h>
#include <string.h>

#include "cfi.h"

struct collect_state {
  struct pp_unwind_obj *out;
  int n, max;
};

static int collect_object(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct collect_state *st = arg;
  if (st->n >= st->max) return 1;
  uintptr_t lo = UINTPTR_MAX, hi = 0, hdr = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      uintptr_t a = info->dlpi_addr + ph->p_vaddr;
      if (a < lo) lo = a;
      if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    } else if (ph->p_type == PT_GNU_EH_FRAME) {
      hdr = info->dlpi_addr + ph->p_vaddr;
    }
  }
  if (!hdr || lo >= hi) return 0;
  uintptr_t table, count;
  if (!pp_cfi_parse_hdr(hdr, &table, &count)) return 0;
  struct pp_unwind_obj *o = &st->out[st->n++];
  o->lo = lo;
  o->hi = hi;
  o->hdr = hdr;
  o->table = table;
  o->count = count;
  return 0;
}

int pp_unwind_collect(struct pp_unwind_obj *out, int max) {
  struct collect_state st = {out, 0, max};
  dl_iterate_phdr(collect_object, &st);
  /* sort by start address (insertion sort: a few hundred objects at most) */
  for (int i = 1; i < st.n; i++) {
    struct pp_unwind_obj key = out[i];
    int j = i - 1;
    while (j >= 0 && out[j].lo > key.lo) {
      out[j + 1] = out[j];
      j--;
    }
    out[j + 1] = key;
  }
  return st.n;
}

/* The object holding pc, or NULL. */
static const struct pp_unwind_obj *object_for(const struct pp_snapshot *snap, uintptr_t pc) {
  int a = 0, b = snap->nobjs - 1;
  while (a <= b) {
    int m = (a + b) / 2;
    if (pc < snap->objs[m].lo) b = m - 1;
    else if (pc >= snap->objs[m].hi) a = m + 1;
    else return &snap->objs[m];
  }
  return NULL;
}

static int snapshot_readable(const void *ctx, uintptr_t addr, size_t len) {
  return (pp_snap_perms((const struct pp_snapshot *)ctx, addr, len) & PP_MAP_R) != 0;
}

int pp_unwind_step(const struct pp_snapshot *snap, uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, int exact,
                   uintptr_t lo, uintptr_t hi) {
  const struct pp_unwind_obj *o = object_for(snap, exact ? *pc : *pc - 1);
  if (!o) return 0;
  struct pp_cfi_source src = {o->hdr, o->table, o->count, snapshot_readable, snap};
  return pp_cfi_step(&src, pc, sp, fp, exact, lo, hi);
}
