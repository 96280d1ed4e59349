// Makes the intercepted system calls a known number of times from Go,
// which issues system calls itself (CGO_ENABLED=0: no libc at all), for
// `run --supervise`. Usage: calls-go loop FILE N, as calls.c's loop
// mode: N rounds of fsync,
// sync_file_range, msync and posix_fadvise(DONTNEED) on FILE (written and
// synced by the test), then fsync(-1), fadvise with advice 99,
// sync_file_range with bad flags and a misaligned msync, printing their errors and how many of FILE's pages are resident (mincore), e.g.
// "resident 0 of 256".
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

const dontneed = 4

func check(what string, errno syscall.Errno) {
	if errno != 0 {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, errno)
		os.Exit(2)
	}
}

func main() {
	if len(os.Args) != 4 || os.Args[1] != "loop" {
		fmt.Fprintln(os.Stderr, "usage: calls-go loop FILE N")
		os.Exit(2)
	}
	rounds, _ := strconv.Atoi(os.Args[3])
	file, err := os.OpenFile(os.Args[2], os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fd := int(file.Fd())
	info, _ := file.Stat()
	length := int(info.Size())
	buffer := make([]byte, 65536)
	for {
		n, _ := file.Read(buffer)
		if n <= 0 {
			break
		}
	}
	mapping, err := syscall.Mmap(fd, 0, length, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	address := uintptr(unsafe.Pointer(&mapping[0]))
	for i := 0; i < rounds; i++ {
		check("fsync", errnoOf(syscall.Fsync(fd)))
		_, _, errno := syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, uintptr(fd), 0, 0, 2, 0, 0)
		check("sync_file_range", errno)
		_, _, errno = syscall.Syscall(syscall.SYS_MSYNC, address, uintptr(length), syscall.MS_SYNC)
		check("msync", errno)
		_, _, errno = syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), 0, 0, dontneed, 0, 0)
		check("fadvise64", errno)
	}
	fmt.Printf("fsync(-1) %v\n", errnoName(errnoOf(syscall.Fsync(-1))))
	_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), 0, 0, 99, 0, 0)
	fmt.Printf("bad advice %v\n", errnoName(errno))
	_, _, errno = syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, uintptr(fd), 0, 0, 0xff, 0, 0)
	fmt.Printf("bad flags %v\n", errnoName(errno))
	_, _, errno = syscall.Syscall(syscall.SYS_MSYNC, address+1, uintptr(length-1), syscall.MS_SYNC)
	fmt.Printf("misaligned msync %v\n", errnoName(errno))
	pages := (length + os.Getpagesize() - 1) / os.Getpagesize()
	vector := make([]byte, pages)
	_, _, errno = syscall.Syscall(syscall.SYS_MINCORE, address, uintptr(length), uintptr(unsafe.Pointer(&vector[0])))
	check("mincore", errno)
	resident := 0
	for _, page := range vector {
		resident += int(page & 1)
	}
	fmt.Printf("resident %d of %d\n", resident, pages)
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}

func errnoName(errno syscall.Errno) string {
	switch errno {
	case syscall.EBADF:
		return "EBADF"
	case syscall.EINVAL:
		return "EINVAL"
	case 0:
		return "0"
	}
	return errno.Error()
}
