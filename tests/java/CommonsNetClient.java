// What a service application embedding Apache commons-net does against hdfsftpd: one session of
// every FTPClient call such code makes, with FTPClient or FTPSClient (explicit or implicit), PROT P or
// PROT C, passive or active. Each step prints one "step: detail" line; the first failure prints
// "FAILED step: reply" and exits 1. tests/test_java_clients.py runs it and checks on the server
// side what each step did.
//
//   java -cp commons-net.jar:CLASSES CommonsNetClient plain|explicit|implicit C|P passive|active
//        HOST PORT USER PASSWORD CA_PEM REMOTE_DIR LOCAL_DIR

import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPClient;
import org.apache.commons.net.ftp.FTPFile;
import org.apache.commons.net.ftp.FTPReply;
import org.apache.commons.net.ftp.FTPSClient;

public class CommonsNetClient {
    private static FTPClient ftp;

    public static void main(String[] args) throws Exception {
        if (args.length != 10) {
            System.err.println("usage: CommonsNetClient plain|explicit|implicit C|P passive|active"
                    + " HOST PORT USER PASSWORD CA_PEM REMOTE_DIR LOCAL_DIR");
            System.exit(2);
        }
        String security = args[0], prot = args[1], mode = args[2], host = args[3];
        int port = Integer.parseInt(args[4]);
        String user = args[5], password = args[6], remote = args[8];
        Path ca = Path.of(args[7]), local = Path.of(args[9]);

        ftp = switch (security) {
            case "plain" -> new FTPClient();
            case "explicit" -> new FTPSClient(); // AUTH TLS right after the greeting
            case "implicit" -> new FTPSClient(true); // TLS from the first byte
            default -> throw new IllegalArgumentException(security);
        };
        if (ftp instanceof FTPSClient ftps) {
            ftps.setTrustManager(trusting(ca));
            ftps.setEndpointCheckingEnabled(true); // the certificate must name 127.0.0.1
        }
        ftp.setConnectTimeout(30_000);
        ftp.setDefaultTimeout(60_000);
        ftp.setDataTimeout(java.time.Duration.ofSeconds(60));
        try {
            ftp.connect(host, port);
            check("connect", FTPReply.isPositiveCompletion(ftp.getReplyCode()));
            check("login", ftp.login(user, password));
            if (ftp instanceof FTPSClient ftps) {
                ftps.execPBSZ(0);
                check("pbsz", FTPReply.isPositiveCompletion(ftps.getReplyCode()));
                ftps.execPROT(prot);
                check("prot", FTPReply.isPositiveCompletion(ftps.getReplyCode()));
            }
            if (mode.equals("passive")) {
                ftp.enterLocalPassiveMode();
            } else {
                ftp.enterLocalActiveMode(); // commons-net's default: PORT, the server connects back
            }
            check("binary", ftp.setFileType(FTP.BINARY_FILE_TYPE));
            check("cwd", ftp.changeWorkingDirectory(remote));
            say("syst", ftp.getSystemType());
            work(local);
            check("logout", ftp.logout());
        } finally {
            if (ftp.isConnected()) {
                ftp.disconnect();
            }
        }
    }

    private static void work(Path local) throws Exception {
        try (InputStream in = new FileInputStream(local.resolve("upload.bin").toFile())) {
            check("storeFile", ftp.storeFile("upload.bin", in));
        }
        try (InputStream in = new FileInputStream(local.resolve("append.bin").toFile())) {
            check("appendFile", ftp.appendFile("upload.bin", in));
        }
        try (OutputStream out = new FileOutputStream(local.resolve("download.bin").toFile())) {
            check("retrieveFile", ftp.retrieveFile("download.bin", out));
        }
        // partial.bin holds the start of download.bin: fetch the rest from where it ends.
        Path partial = local.resolve("partial.bin");
        ftp.setRestartOffset(Files.size(partial));
        try (OutputStream out = new FileOutputStream(partial.toFile(), true)) {
            check("restartOffset retrieveFile", ftp.retrieveFile("download.bin", out));
        }
        FTPFile[] listed = ftp.listFiles("listing");
        check("listFiles", listed != null && FTPReply.isPositiveCompletion(ftp.getReplyCode()));
        for (FTPFile file : listed) {
            say("LIST", entry(file));
        }
        FTPFile[] mlsd = ftp.mlistDir("listing");
        check("mlistDir", mlsd != null && FTPReply.isPositiveCompletion(ftp.getReplyCode()));
        for (FTPFile file : mlsd) {
            say("MLSD", entry(file));
        }
        check("rename", ftp.rename("to-rename.txt", "renamed.txt"));
        check("deleteFile", ftp.deleteFile("to-delete.txt"));
        check("makeDirectory", ftp.makeDirectory("new-dir"));
        check("removeDirectory", ftp.removeDirectory("old-dir"));
        check("SITE CHMOD", ftp.sendSiteCommand("CHMOD 640 chmod.txt"));
    }

    /** name, type, size and modification time (ms since the epoch) of a listed entry. */
    private static String entry(FTPFile file) {
        String type = file.isDirectory() ? "dir" : file.isFile() ? "file" : "other";
        long millis = file.getTimestamp() == null ? -1 : file.getTimestamp().getTimeInMillis();
        return file.getName() + " " + type + " " + file.getSize() + " " + millis;
    }

    private static TrustManager trusting(Path pem) throws Exception {
        X509Certificate cert;
        try (InputStream in = Files.newInputStream(pem)) {
            cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        store.setCertificateEntry("server", cert);
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(store);
        return factory.getTrustManagers()[0];
    }

    private static void check(String step, boolean ok) {
        String reply = ftp.getReplyString() == null ? "" : ftp.getReplyString().trim();
        if (!ok) {
            System.out.println("FAILED " + step + ": " + reply);
            System.exit(1);
        }
        say(step, reply);
    }

    private static void say(String step, String detail) {
        System.out.println(step + ": " + detail);
    }
}
