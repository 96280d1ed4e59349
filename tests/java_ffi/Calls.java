// Calls posix_fadvise and fsync through JNA (Native.load("c")), the way
// Java programs reach libc without JNI code of their own.
//   java -cp jna.jar:. Calls FILE COUNT
import com.sun.jna.Library;
import com.sun.jna.Native;

public class Calls {
    public interface C extends Library {
        int open(String path, int flags, int mode);
        int fsync(int fd);
        int posix_fadvise(int fd, long offset, long length, int advice);
    }

    public static void main(String[] args) {
        C c = Native.load("c", C.class);
        int fd = c.open(args[0], 02 | 0100, 0644);
        int count = Integer.parseInt(args[1]);
        int failed = 0;
        for (int i = 0; i < count; i++) {
            if (c.fsync(fd) != 0) failed++;
            if (c.posix_fadvise(fd, 0, 4096, 4) != 0) failed++;
        }
        System.out.println("done " + failed);
    }
}
