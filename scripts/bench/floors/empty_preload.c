/* Case 5's first floor: a preloaded library with nothing in it. What the
 * loader charges every process for one more object (open, map, relocate,
 * unmap at exit) — the least any LD_PRELOAD library can cost. */
int fadvise_bench_empty_preload;
