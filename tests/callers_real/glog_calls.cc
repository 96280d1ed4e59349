// Drives Debian's glog (0.6) for tests/callers_real.rs: LINES WARNING lines
// of about 1 KiB each into DIR, flushed one by one (FLAGS_logbufsecs = 0),
// so that glog's LogFileObject::Write drops the log's written pages with
// posix_fadvise(DONTNEED) every 2 MiB past the first 3 MiB. Then main makes
// DIRECT posix_fadvise calls of its own on FILE, which a rule on glog's
// calls must leave alone.
//
//   glog_calls DIR LINES FILE DIRECT
#include <glog/logging.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s DIR LINES FILE DIRECT\n", argv[0]);
    return 2;
  }
  FLAGS_log_dir = argv[1];
  FLAGS_logbufsecs = 0;
  FLAGS_stderrthreshold = 3;  // keep WARNING lines off the terminal
  google::InitGoogleLogging(argv[0]);
  const std::string padding(1000, 'x');
  long lines = std::atol(argv[2]);
  for (long i = 0; i < lines; i++) LOG(WARNING) << "line " << i << ' ' << padding;

  int fd = open(argv[3], O_RDWR | O_CREAT, 0644);
  if (fd < 0) {
    std::perror(argv[3]);
    return 1;
  }
  long direct = std::atol(argv[4]);
  int failed = 0;
  for (long i = 0; i < direct; i++)
    failed += posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0;
  close(fd);
  std::printf("done %d\n", failed);
  return 0;
}
