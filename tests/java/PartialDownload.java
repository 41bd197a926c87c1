// A Java application that reads the start of a download and closes the stream, TRIES times, each in a
// session of its own: FTPSClient (explicit, JDK TLS), PROT P, passive, retrieveFileStream, BYTES bytes read,
// close(), completePendingCommand(). Prints "reply: CODE TEXT" per try. tests/test_java_clients.py runs it.
//
//   java -cp commons-net.jar:CLASSES PartialDownload HOST PORT USER PASSWORD CA_PEM FILE BYTES TRIES

import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import org.apache.commons.net.ftp.FTP;
import org.apache.commons.net.ftp.FTPSClient;

public class PartialDownload {
    public static void main(String[] args) throws Exception {
        String host = args[0], user = args[2], password = args[3], file = args[5];
        int port = Integer.parseInt(args[1]), bytes = Integer.parseInt(args[6]), tries = Integer.parseInt(args[7]);
        TrustManager trust = trusting(args[4]);
        for (int i = 0; i < tries; i++) {
            FTPSClient ftp = new FTPSClient();
            ftp.setTrustManager(trust);
            ftp.setDefaultTimeout(60_000);
            ftp.connect(host, port);
            if (!ftp.login(user, password)) {
                throw new IllegalStateException("login: " + ftp.getReplyString());
            }
            ftp.execPBSZ(0);
            ftp.execPROT("P");
            ftp.enterLocalPassiveMode();
            ftp.setFileType(FTP.BINARY_FILE_TYPE);
            try (InputStream in = ftp.retrieveFileStream(file)) {
                if (in == null) {
                    throw new IllegalStateException("retrieveFileStream: " + ftp.getReplyString());
                }
                byte[] buffer = new byte[8192];
                for (int read = 0; read < bytes; ) {
                    int n = in.read(buffer, 0, Math.min(buffer.length, bytes - read));
                    if (n < 0) {
                        break;
                    }
                    read += n;
                }
            }
            ftp.completePendingCommand();
            System.out.println("reply: " + ftp.getReplyString().strip());
            ftp.disconnect();
        }
    }

    /** Trusts the one certificate in the PEM file. */
    private static TrustManager trusting(String pem) throws Exception {
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        try (FileInputStream in = new FileInputStream(pem)) {
            store.setCertificateEntry("server", (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init(store);
        return factory.getTrustManagers()[0];
    }
}
