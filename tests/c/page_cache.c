/* Shows what posix_fadvise(DONTNEED) did to the page cache. Writes an 8 MiB
 * file, fsyncs it (so its pages are clean and can be evicted), counts its
 * resident pages with mmap + mincore, calls posix_fadvise(DONTNEED) on the
 * whole file and counts again. Prints:
 *   before RESIDENT TOTAL
 *   fadvise ret=R
 *   after RESIDENT TOTAL
 *
 * Usage: page_cache FILE   (FILE on a real file system, not tmpfs) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_SIZE (8L << 20)

static void fail(const char *what)
{
    perror(what);
    exit(2);
}

/* The mapping is never touched, so counting does not fault pages in. */
static void count_resident(const char *label, void *map, long page)
{
    long pages = FILE_SIZE / page;
    unsigned char *vec = malloc(pages);
    if (vec == NULL || mincore(map, FILE_SIZE, vec) != 0)
        fail("mincore");
    long resident = 0;
    for (long i = 0; i < pages; i++)
        resident += vec[i] & 1;
    printf("%s %ld %ld\n", label, resident, pages);
    free(vec);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: page_cache FILE\n");
        return 2;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        fail(argv[1]);
    static char block[1 << 20];
    memset(block, 'p', sizeof block);
    for (long done = 0; done < FILE_SIZE; done += sizeof block)
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
            fail("write");
    if (fsync(fd) != 0)
        fail("fsync");
    long page = sysconf(_SC_PAGESIZE);
    void *map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        fail("mmap");
    count_resident("before", map, page);
    printf("fadvise ret=%d\n", posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED));
    count_resident("after", map, page);
    return 0;
}
