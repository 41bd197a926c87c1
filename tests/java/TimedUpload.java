import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPClient;

/**
 * One upload as a Java application makes it with Apache commons-net, timed from the STOR to its reply:
 * TimedUpload HOST PORT USER PASSWORD LOCAL REMOTE prints "<reply code> <bytes> <milliseconds>".
 */
public class TimedUpload {
    public static void main(String[] args) throws Exception {
        FTPClient ftp = new FTPClient();
        ftp.connect(args[0], Integer.parseInt(args[1]));
        if (!ftp.login(args[2], args[3])) {
            throw new IllegalStateException("login refused: " + ftp.getReplyString());
        }
        ftp.setFileType(FTP.BINARY_FILE_TYPE);
        ftp.enterLocalPassiveMode();
        Path local = Path.of(args[4]);
        long started = System.nanoTime();
        try (InputStream in = Files.newInputStream(local)) {
            ftp.storeFile(args[5], in);
        }
        long millis = (System.nanoTime() - started) / 1_000_000;
        System.out.println(ftp.getReplyCode() + " " + Files.size(local) + " " + millis);
        ftp.logout();
        ftp.disconnect();
    }
}
