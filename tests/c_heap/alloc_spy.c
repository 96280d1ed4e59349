/* Preloaded AFTER the shim: interposes the program's allocator (malloc,
 * calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc, reallocarray) and reports every call made while a frame of
 * libfadvise_shim.so is on the stack — directly from the shim, or through a
 * libc function the shim called (strdup, opendir, dlerror…). The stack is
 * walked with libgcc's unwinder (linked statically: -static-libgcc), which
 * allocates nothing. Each finding is one line on stderr:
 *   alloc-spy: malloc(24) from libfadvise_shim.so+0x1234
 * and at exit "alloc-spy: N calls, M from the shim". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static uintptr_t shim_start, shim_end;
static int shim_found;
static __thread int inside;
static unsigned long calls, from_shim;

static int find_shim(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size; (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libfadvise_shim.so")) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
        if (!shim_found || start < shim_start) shim_start = start;
        if (!shim_found || end > shim_end) shim_end = end;
        shim_found = 1;
    }
    return 1;
}

__attribute__((constructor(101))) static void spy_start(void) {
    inside = 1;
    dl_iterate_phdr(find_shim, NULL);
    inside = 0;
    if (!shim_found) {
        static const char msg[] = "alloc-spy: libfadvise_shim.so is not loaded\n";
        write(2, msg, sizeof msg - 1);
    }
}

struct walk { uintptr_t hit; int frames; };

static _Unwind_Reason_Code visit(struct _Unwind_Context *context, void *data) {
    struct walk *walk = data;
    uintptr_t ip = _Unwind_GetIP(context);
    if (ip >= shim_start && ip < shim_end) { walk->hit = ip; return _URC_END_OF_STACK; }
    return ++walk->frames > 64 ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static void put_hex(char *out, size_t *len, uintptr_t value) {
    char digits[20]; int n = 0;
    do { digits[n++] = "0123456789abcdef"[value & 15]; value >>= 4; } while (value);
    out[(*len)++] = '0'; out[(*len)++] = 'x';
    while (n) out[(*len)++] = digits[--n];
}

static void check(const char *what, size_t size) {
    if (inside || !shim_found) return;
    inside = 1;
    __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    struct walk walk = {0, 0};
    _Unwind_Backtrace(visit, &walk);
    if (walk.hit) {
        __atomic_add_fetch(&from_shim, 1, __ATOMIC_RELAXED);
        char line[160]; size_t len = 0;
        const char *prefix = "alloc-spy: ";
        memcpy(line, prefix, strlen(prefix)); len += strlen(prefix);
        memcpy(line + len, what, strlen(what)); len += strlen(what);
        memcpy(line + len, " size ", 6); len += 6;
        put_hex(line, &len, size);
        memcpy(line + len, " from libfadvise_shim.so+", 25); len += 25;
        put_hex(line, &len, walk.hit - shim_start);
        line[len++] = '\n';
        write(2, line, len);
    }
    inside = 0;
}

void *malloc(size_t size) { check("malloc", size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { check("calloc", n * size); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { check("realloc", size); return __libc_realloc(p, size); }
void free(void *p) { if (p) check("free", 0); __libc_free(p); }
void *memalign(size_t align, size_t size) { check("memalign", size); return __libc_memalign(align, size); }
void *aligned_alloc(size_t align, size_t size) { check("aligned_alloc", size); return __libc_memalign(align, size); }
void *valloc(size_t size) { check("valloc", size); return __libc_memalign(4096, size); }
void *pvalloc(size_t size) { check("pvalloc", size); return __libc_memalign(4096, (size + 4095) & ~(size_t)4095); }
int posix_memalign(void **out, size_t align, size_t size) {
    check("posix_memalign", size);
    void *p = __libc_memalign(align, size);
    if (!p) return 12;
    *out = p;
    return 0;
}
void *reallocarray(void *p, size_t n, size_t size) { check("reallocarray", n * size); return __libc_realloc(p, n * size); }

__attribute__((destructor(101))) static void spy_end(void) {
    char line[128];
    int len = snprintf(line, sizeof line, "alloc-spy: %lu calls, %lu from the shim\n", calls, from_shim);
    inside = 1;
    if (len > 0) write(2, line, (size_t)len);
}
