// Real glog (case 3): writes LINES WARNING lines through Debian's glog with
// FLAGS_logbufsecs = 0 (flush every line), the way a service logs, into DIR.
// Run under the shim to count the posix_fadvise calls glog itself makes and
// what they cost. Prints the wall time in seconds.
//
//   glog_real DIR LINES
#include <glog/logging.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR LINES\n", argv[0]);
    return 2;
  }
  FLAGS_log_dir = argv[1];
  FLAGS_logbufsecs = 0;
  FLAGS_stderrthreshold = 3;  // keep WARNING lines off the terminal
  google::InitGoogleLogging(argv[0]);
  long lines = std::atol(argv[2]);
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < lines; i++)
    LOG(WARNING) << "request " << i << " took longer than expected, retrying with backoff";
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  std::printf("%.4f\n", elapsed.count());
  return 0;
}
