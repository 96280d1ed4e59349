/* The allocator spy for musl programs (musl supports replacing malloc, and
 * its own functions then call the replacement too). Preloaded AFTER the
 * shim: it serves malloc, calloc, realloc, free, aligned_alloc,
 * posix_memalign, memalign and malloc_usable_size from a bump arena of its
 * own, and reports every call whose caller lies in libfadvise_shim.so:
 *   alloc-spy: malloc(24) from libfadvise_shim.so+0x1234
 * and at exit "alloc-spy: N calls, M from the shim". It cannot walk the
 * stack (libgcc's unwinder is built for glibc), so it sees the shim's own
 * calls, not calls the shim would make through another libc function. */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ARENA (256u << 20)
#define HEADER 16

static char *arena;
static atomic_size_t used;
static uintptr_t shim_start, shim_end;
static atomic_ulong calls, from_shim;

static int find_shim(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size; (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libfadvise_shim.so")) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (!shim_start || start < shim_start) shim_start = start;
        if (end > shim_end) shim_end = end;
    }
    return 1;
}

__attribute__((constructor)) static void spy_start(void) {
    dl_iterate_phdr(find_shim, 0);
}

__attribute__((destructor)) static void spy_end(void) {
    char line[96];
    int n = snprintf(line, sizeof line, "alloc-spy: %lu calls, %lu from the shim\n",
                     (unsigned long)calls, (unsigned long)from_shim);
    write(2, line, n);
}

static void note(const char *what, size_t size, void *caller) {
    atomic_fetch_add(&calls, 1);
    uintptr_t at = (uintptr_t)caller;
    if (!shim_start || at < shim_start || at >= shim_end) return;
    atomic_fetch_add(&from_shim, 1);
    char line[128];
    int n = snprintf(line, sizeof line, "alloc-spy: %s(%zu) from libfadvise_shim.so+0x%lx\n",
                     what, size, (unsigned long)(at - shim_start));
    write(2, line, n);
}

/* A block of `size` bytes aligned to `align` (a power of two >= 16), its
 * size kept in the 16 bytes before it. */
static void *take(size_t size, size_t align) {
    if (!arena) {
        void *mapped = mmap(0, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mapped == MAP_FAILED) return 0;
        char *expected = 0;
        if (!atomic_compare_exchange_strong((_Atomic(char *) *)&arena, &expected, mapped))
            munmap(mapped, ARENA);
    }
    if (align < HEADER) align = HEADER;
    size_t need = size + HEADER + align;
    size_t at = atomic_fetch_add(&used, need);
    if (at + need > ARENA) { errno = ENOMEM; return 0; }
    uintptr_t block = ((uintptr_t)arena + at + HEADER + align - 1) & ~(uintptr_t)(align - 1);
    ((size_t *)block)[-1] = size;
    return (void *)block;
}

void *malloc(size_t size) { note("malloc", size, __builtin_return_address(0)); return take(size, 16); }
void *calloc(size_t n, size_t size) {
    note("calloc", n * size, __builtin_return_address(0));
    if (size && n > (size_t)-1 / size) { errno = ENOMEM; return 0; }
    return take(n * size, 16); /* fresh mapped pages are zero */
}
void free(void *block) { if (block) note("free", 0, __builtin_return_address(0)); }
size_t malloc_usable_size(void *block) { return block ? ((size_t *)block)[-1] : 0; }
void *realloc(void *old, size_t size) {
    note("realloc", size, __builtin_return_address(0));
    void *block = take(size, 16);
    if (block && old) {
        size_t keep = ((size_t *)old)[-1];
        memcpy(block, old, keep < size ? keep : size);
    }
    return block;
}
void *aligned_alloc(size_t align, size_t size) { note("aligned_alloc", size, __builtin_return_address(0)); return take(size, align); }
void *memalign(size_t align, size_t size) { note("memalign", size, __builtin_return_address(0)); return take(size, align); }
int posix_memalign(void **out, size_t align, size_t size) {
    note("posix_memalign", size, __builtin_return_address(0));
    void *block = take(size, align);
    if (!block) return ENOMEM;
    *out = block;
    return 0;
}
