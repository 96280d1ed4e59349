// Forces a file FULL times with FileChannel.force(true) (fsync through the
// JDK's libnio.so) and DATA times with force(false) (fdatasync), for
// tests/callers_real.rs.
//
//   java Force FILE FULL DATA
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;

public class Force {
    public static void main(String[] args) throws Exception {
        int full = Integer.parseInt(args[1]);
        int data = Integer.parseInt(args[2]);
        try (FileChannel channel = FileChannel.open(Paths.get(args[0]),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            for (int i = 0; i < full + data; i++) {
                channel.write(ByteBuffer.wrap(new byte[] {(byte) i}));
                channel.force(i < full);
            }
        }
        System.out.println("done");
    }
}
