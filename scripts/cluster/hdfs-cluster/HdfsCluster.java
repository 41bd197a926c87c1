import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.security.PrivilegedExceptionAction;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.DistributedFileSystem;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.hdfs.protocol.DatanodeInfo;
import org.apache.hadoop.hdfs.protocol.HdfsConstants;
import org.apache.hadoop.hdfs.protocol.LocatedBlock;
import org.apache.hadoop.hdfs.protocol.LocatedBlocks;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.security.UserGroupInformation;
import org.apache.hadoop.security.authorize.ProxyUsers;

/**
 * A real HDFS for tests and for trying hdfsftpd: a NameNode (or an HA pair) and DataNodes of
 * MiniDFSCluster in this JVM, on 127.0.0.1 ephemeral ports, with its state under DIR/data.
 *
 * Usage: HdfsCluster DIR [--ha] [--datanodes N] [--secure KEYTAB PRINCIPAL HTTP_PRINCIPAL KRB5_CONF]
 *                    [--owner PID [--kdc PID]] [--audit]
 *
 * Once the cluster accepts writes it writes the client configuration (DIR/conf/core-site.xml and
 * hdfs-site.xml) and then DIR/control.port, the loopback port on which it takes one command per
 * connection (a line of tab-separated words) and answers one line, "ok ..." or "error ...". See scripts/hdfs-cluster.sh.
 *
 * With --owner, the cluster lives only as long as process PID (a test run): once PID is gone, however it
 * died, the cluster shuts down, the KDC of --kdc is stopped by its pid, and this JVM exits.
 *
 * With --audit, the NameNode's audit log (a line per metadata call, written before the call returns) goes
 * to DIR/audit.log, and a line per complete() call (which the audit log leaves out; a client repeats it
 * until the last block is reported stored) to DIR/complete.log.
 */
public class HdfsCluster {
    private static final String NAMESERVICE = "hdfsftpd-ns";
    private static final int REPLICATION = 2;

    private final File dir;
    private final boolean ha;
    private final int dataNodes;
    private final String[] secure;
    /** `--conf KEY=VALUE` settings, applied last to the NameNode's and DataNodes' configuration. */
    private final List<String> settings;
    private volatile MiniDFSCluster cluster;
    private DistributedFileSystem adminFs;
    private final List<Integer> dataNodePorts = new ArrayList<>();
    private final Map<Integer, MiniDFSCluster.DataNodeProperties> stoppedDataNodes = new HashMap<>();

    HdfsCluster(File dir, boolean ha, int dataNodes, String[] secure, List<String> settings) {
        this.dir = dir;
        this.ha = ha;
        this.dataNodes = dataNodes;
        this.secure = secure;
        this.settings = settings;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            throw new IllegalArgumentException("usage: HdfsCluster DIR [--ha] [--datanodes N] [--secure ...]");
        }
        File dir = new File(args[0]).getAbsoluteFile();
        boolean ha = false;
        int dataNodes = 3;
        String[] secure = null;
        long owner = 0;
        long kdc = 0;
        boolean audit = false;
        List<String> settings = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--ha": ha = true; break;
                case "--datanodes": dataNodes = Integer.parseInt(args[++i]); break;
                case "--secure": secure = Arrays.copyOfRange(args, i + 1, i + 5); i += 4; break;
                case "--owner": owner = Long.parseLong(args[++i]); break;
                case "--kdc": kdc = Long.parseLong(args[++i]); break;
                case "--audit": audit = true; break;
                case "--conf": settings.add(args[++i]); break;
                default: throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (audit) {
            logAuditTo(new File(dir, "audit.log"));
            logCompleteCallsTo(new File(dir, "complete.log"));
        }
        HdfsCluster hdfsCluster = new HdfsCluster(dir, ha, dataNodes, secure, settings);
        if (owner != 0) {
            hdfsCluster.watchOwner(owner, kdc);
        }
        // Hadoop's non-daemon threads would keep a failed or stopped cluster's JVM alive.
        try {
            hdfsCluster.run();
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1);
        }
        System.exit(0);
    }

    /**
     * Checks every second that the owner is alive (its handle knows the process's start time, so a reused
     * pid is not mistaken for it); once it is gone, stops everything and exits. Started before the cluster
     * is built: an owner killed during start-up stops it too.
     */
    /** The NameNode's audit logger (FSNamesystem's, through slf4j to log4j), at INFO, into FILE only. */
    private static void logAuditTo(File file) throws IOException {
        org.apache.log4j.Logger audit = org.apache.log4j.Logger.getLogger(
            "org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit");
        audit.setLevel(org.apache.log4j.Level.INFO);
        audit.setAdditivity(false);
        org.apache.log4j.PatternLayout layout = new org.apache.log4j.PatternLayout("%m%n");
        audit.addAppender(new org.apache.log4j.FileAppender(layout, file.getPath()));
    }

    /**
     * Each complete() call as the NameNode logs it at DEBUG ("DIR* NameSystem.completeFile: SRC for CLIENT"),
     * into FILE only; the state-change logger's other messages still reach the console at WARN, as before.
     */
    private static void logCompleteCallsTo(File file) throws IOException {
        org.apache.log4j.Logger stateChange = org.apache.log4j.Logger.getLogger("org.apache.hadoop.hdfs.StateChange");
        stateChange.setLevel(org.apache.log4j.Level.DEBUG);
        stateChange.setAdditivity(false);
        org.apache.log4j.ConsoleAppender console = new org.apache.log4j.ConsoleAppender(
            new org.apache.log4j.PatternLayout("%d{ISO8601} %p %c{1}: %m%n"));
        console.setThreshold(org.apache.log4j.Level.WARN);
        stateChange.addAppender(console);
        org.apache.log4j.FileAppender calls =
            new org.apache.log4j.FileAppender(new org.apache.log4j.PatternLayout("%m%n"), file.getPath());
        calls.addFilter(new org.apache.log4j.spi.Filter() {
            @Override
            public int decide(org.apache.log4j.spi.LoggingEvent event) {
                return String.valueOf(event.getMessage()).startsWith("DIR* NameSystem.completeFile: ") ? ACCEPT : DENY;
            }
        });
        stateChange.addAppender(calls);
    }

    private void watchOwner(long ownerPid, long kdcPid) {
        ProcessHandle owner = ProcessHandle.of(ownerPid).orElse(null);
        // Taken now, while the KDC surely runs: a pid reused after it died is not the KDC.
        ProcessHandle kdc = kdcPid == 0 ? null : ProcessHandle.of(kdcPid).orElse(null);
        Thread watcher = new Thread(() -> {
            while (owner != null && owner.isAlive()) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.out.println("hdfs-cluster: owner process " + ownerPid + " is gone; shutting down");
            stopOrphaned(kdc);
        }, "owner-watcher");
        watcher.setDaemon(true);
        watcher.start();
    }

    /** The owner is gone: the cluster, then the KDC, go down, and the pid files that named them. */
    private void stopOrphaned(ProcessHandle kdc) {
        new File(dir, "control.port").delete();
        MiniDFSCluster running = cluster;
        if (running != null) {
            try {
                running.shutdown(true);
            } catch (RuntimeException e) {
                e.printStackTrace();
            }
        }
        if (kdc != null) {
            kdc.destroy();
            try {
                kdc.onExit().get(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                kdc.destroyForcibly();
            }
            new File(dir, "kdc.pid").delete();
        }
        // Last: `scripts/cluster/hdfs-cluster.sh stop DIR` then finds nothing to stop (and no pid to mistake).
        new File(dir, "cluster.pid").delete();
        System.out.println("hdfs-cluster: stopped");
        System.out.flush();
        System.exit(0);
    }

    private Configuration serverConf() throws IOException {
        Configuration conf = new HdfsConfiguration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, new File(dir, "data").getPath());
        conf.setBoolean("dfs.permissions.enabled", true);
        // Two replicas on three DataNodes: a stopped DataNode leaves one to copy from and one to replace it.
        conf.setInt("dfs.replication", REPLICATION);
        // Tests use small blocks to make files of several blocks cheaply.
        conf.setLong("dfs.namenode.fs-limits.min-block-size", 0);
        conf.setInt("dfs.namenode.safemode.extension", 0);
        conf.setLong("dfs.namenode.resource.du.reserved", 1024 * 1024);
        // A stopped DataNode is noticed in seconds, not in ten minutes.
        conf.setInt("dfs.heartbeat.interval", 1);
        conf.setInt("dfs.namenode.heartbeat.recheck-interval", 3000);
        conf.set("hadoop.security.group.mapping", "org.apache.hadoop.security.ShellBasedUnixGroupsMapping");
        if (secure != null) {
            String keytab = secure[0], principal = secure[1], httpPrincipal = secure[2];
            System.setProperty("java.security.krb5.conf", secure[3]);
            conf.set("hadoop.security.authentication", "kerberos");
            conf.setBoolean("hadoop.security.authorization", true);
            conf.set("dfs.namenode.kerberos.principal", principal);
            conf.set("dfs.namenode.keytab.file", keytab);
            conf.set("dfs.datanode.kerberos.principal", principal);
            conf.set("dfs.datanode.keytab.file", keytab);
            conf.set("dfs.web.authentication.kerberos.principal", httpPrincipal);
            conf.set("dfs.web.authentication.kerberos.keytab", keytab);
            conf.set("dfs.journalnode.kerberos.principal", principal);
            conf.set("dfs.journalnode.keytab.file", keytab);
            conf.setBoolean("dfs.block.access.token.enable", true);
            // DataNodes on unprivileged ports without SASL on the data transfer protocol.
            conf.setBoolean("ignore.secure.ports.for.testing", true);
            UserGroupInformation.setConfiguration(conf);
            try {
                UserGroupInformation.loginUserFromKeytab(principal, keytab);
            } catch (IOException e) {
                throw new IOException("Kerberos login of " + principal + " with " + keytab + " failed", e);
            }
        }
        for (String setting : settings) {
            String[] keyValue = setting.split("=", 2);
            if (keyValue.length != 2) {
                throw new IllegalArgumentException("--conf takes KEY=VALUE, not " + setting);
            }
            conf.set(keyValue[0], keyValue[1]);
        }
        return conf;
    }

    void run() throws Exception {
        Configuration conf = serverConf();
        MiniDFSCluster.Builder builder = new MiniDFSCluster.Builder(conf)
            .numDataNodes(0)
            .storagesPerDatanode(1)
            .format(true);
        if (ha) {
            builder.nnTopology(MiniDFSNNTopology.simpleHATopology());
        }
        cluster = builder.build();
        if (ha) {
            cluster.transitionToActive(0);
        }
        // DataNodes after the NameNode: built together, waitClusterUp gives up after ~10 s on a busy machine.
        cluster.startDataNodes(conf, dataNodes, true, null, null);
        cluster.waitActive();
        cluster.waitClusterUp();
        for (DataNode dataNode : cluster.getDataNodes()) {
            dataNodePorts.add(dataNode.getXferPort());
        }
        writeClientConf();
        probeWrite();
        ServerSocket control = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
        writeAtomically(new File(dir, "control.port"), control.getLocalPort() + "\n");
        System.out.println("hdfs-cluster: ready, control port " + control.getLocalPort());
        serve(control);
    }

    /** The address clients use: the nameservice with --ha, else the NameNode's host:port. */
    private String uri() {
        if (ha) {
            return "hdfs://" + NAMESERVICE;
        }
        return "hdfs://127.0.0.1:" + cluster.getNameNodePort();
    }

    private void writeClientConf() throws IOException {
        File confDir = new File(dir, "conf");
        confDir.mkdirs();
        Configuration core = new Configuration(false);
        core.set("fs.defaultFS", uri());
        Configuration site = new Configuration(false);
        // With two replicas and three DataNodes, a write pipeline that loses a DataNode goes on with the
        // one left when no replacement can be had.
        site.setBoolean("dfs.client.block.write.replace-datanode-on-failure.best-effort", true);
        site.setInt("dfs.replication", REPLICATION);
        if (ha) {
            site.set("dfs.nameservices", NAMESERVICE);
            site.set("dfs.ha.namenodes." + NAMESERVICE, "nn1,nn2");
            for (int i = 0; i < 2; i++) {
                InetSocketAddress address = cluster.getNameNode(i).getNameNodeAddress();
                site.set("dfs.namenode.rpc-address." + NAMESERVICE + ".nn" + (i + 1),
                    "127.0.0.1:" + address.getPort());
            }
            site.set("dfs.client.failover.proxy.provider." + NAMESERVICE,
                "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
            // Failover within seconds, not after the default 15 retries with long sleeps.
            site.setInt("dfs.client.failover.sleep.base.millis", 100);
            site.setInt("dfs.client.failover.sleep.max.millis", 1000);
        }
        // A restarted NameNode is tried again quickly.
        core.setInt("ipc.client.connect.max.retries", 20);
        core.setInt("ipc.client.connect.retry.interval", 500);
        if (secure != null) {
            core.set("hadoop.security.authentication", "kerberos");
            site.set("dfs.namenode.kerberos.principal", secure[1]);
            site.set("dfs.datanode.kerberos.principal", secure[1]);
            site.setBoolean("dfs.block.access.token.enable", true);
        }
        writeXml(core, new File(confDir, "core-site.xml"));
        writeXml(site, new File(confDir, "hdfs-site.xml"));
    }

    private static void writeXml(Configuration conf, File file) throws IOException {
        File tmp = new File(file.getPath() + ".tmp");
        try (OutputStream out = new FileOutputStream(tmp)) {
            conf.writeXml(out);
        }
        Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeAtomically(File file, String text) throws IOException {
        File tmp = new File(file.getPath() + ".tmp");
        Files.write(tmp.toPath(), text.getBytes(StandardCharsets.UTF_8));
        Files.move(tmp.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /** The cluster accepts writes: a file goes through the DataNode pipeline and is deleted. */
    private void probeWrite() throws IOException {
        FileSystem fs = fs();
        Path probe = new Path("/tmp/.hdfs-cluster-probe");
        try (FSDataOutputStream out = fs.create(probe, true)) {
            out.write("ready".getBytes(StandardCharsets.UTF_8));
        }
        fs.delete(probe, false);
        fs.setPermission(new Path("/tmp"), new FsPermission((short) 01777));
    }

    /** The superuser's view (this process's user), through the client configuration (and failover). */
    private DistributedFileSystem fs() throws IOException {
        if (adminFs == null) {
            Configuration client = new HdfsConfiguration();
            client.addResource(new Path(new File(dir, "conf/core-site.xml").toURI()));
            client.addResource(new Path(new File(dir, "conf/hdfs-site.xml").toURI()));
            adminFs = (DistributedFileSystem) FileSystem.newInstance(java.net.URI.create(uri()), client);
        }
        return adminFs;
    }

    private void serve(ServerSocket control) throws IOException {
        while (true) {
            try (Socket client = control.accept()) {
                BufferedReader in = new BufferedReader(new InputStreamReader(client.getInputStream(), StandardCharsets.UTF_8));
                PrintWriter out = new PrintWriter(client.getOutputStream(), true, StandardCharsets.UTF_8);
                String line = in.readLine();
                if (line == null) {
                    continue;
                }
                String[] words = line.split("\t");
                String reply;
                try {
                    reply = "ok " + command(words);
                } catch (Exception e) {
                    Throwable root = e;
                    while (root.getCause() != null) {
                        root = root.getCause();
                    }
                    reply = "error " + (e == root ? e.toString() : e + " (" + root + ")");
                    reply = reply.replace('\n', ' ');
                }
                out.println(reply);
                if (words[0].equals("shutdown")) {
                    control.close();
                    return;
                }
            }
        }
    }

    /** Gives PATH to the owner at w[at] (and the group of that name), then the octal mode at w[at + 1], if given. */
    private static void giveTo(DistributedFileSystem fs, Path path, String[] w, int at) throws IOException {
        if (w.length > at) {
            fs.setOwner(path, w[at], w[at]);
        }
        if (w.length > at + 1) {
            fs.setPermission(path, new FsPermission(Short.parseShort(w[at + 1], 8)));
        }
    }

    private String command(String[] w) throws Exception {
        switch (w[0]) {
            case "ping":
                return uri();
            case "shutdown":
                cluster.shutdown(true);
                return "stopped";
            case "home": {
                // home NAME: /user/NAME owned by NAME (group NAME), mode 0700.
                Path home = new Path("/user/" + w[1]);
                DistributedFileSystem fs = fs();
                fs.mkdirs(home);
                fs.setOwner(home, w[1], w[1]);
                fs.setPermission(home, new FsPermission((short) 0700));
                return home.toString();
            }
            case "proxy-users": {
                // proxy-users GATEWAY USERS: the NameNode lets the principal whose short name is GATEWAY act
                // for the comma-separated USERS (and no one else), from loopback; the rules an administrator
                // sets as hadoop.proxyuser.GATEWAY.hosts/users, refreshed as `dfsadmin
                // -refreshSuperUserGroupsConfiguration` does (ProxyUsers is the NameNode's, in this JVM).
                Configuration rules = new Configuration(false);
                rules.set("hadoop.proxyuser." + w[1] + ".hosts", "127.0.0.1,localhost");
                rules.set("hadoop.proxyuser." + w[1] + ".users", w[2]);
                ProxyUsers.refreshSuperUserGroupsConfiguration(rules);
                return w[1] + " may act for " + w[2];
            }
            case "stat": {
                // stat PATH: owner group octal-mode replication length mtime-ms type, as HDFS recorded them.
                FileStatus s = fs().getFileStatus(new Path(w[1]));
                return String.format("%s %s %o %d %d %d %s", s.getOwner(), s.getGroup(),
                    s.getPermission().toShort(), s.getReplication(), s.getLen(), s.getModificationTime(),
                    s.isDirectory() ? "dir" : "file");
            }
            case "exists":
                return Boolean.toString(fs().exists(new Path(w[1])));
            case "ls": {
                StringBuilder names = new StringBuilder();
                for (FileStatus s : fs().listStatus(new Path(w[1]))) {
                    names.append(names.length() == 0 ? "" : " ").append(s.getPath().getName());
                }
                return names.toString();
            }
            case "get": {
                // get PATH LOCAL: copies a file out of HDFS.
                fs().copyToLocalFile(false, new Path(w[1]), new Path(new File(w[2]).getAbsolutePath()), true);
                return w[2];
            }
            case "put": {
                // put LOCAL PATH [OWNER [MODE]]: copies a local file into HDFS.
                DistributedFileSystem fs = fs();
                Path target = new Path(w[2]);
                fs.copyFromLocalFile(false, true, new Path(new File(w[1]).getAbsolutePath()), target);
                giveTo(fs, target, w, 3);
                return w[2];
            }
            case "mkdir": {
                // mkdir PATH [OWNER [MODE]]
                DistributedFileSystem fs = fs();
                Path path = new Path(w[1]);
                fs.mkdirs(path);
                giveTo(fs, path, w, 2);
                return w[1];
            }
            case "touch": {
                // touch DIR PREFIX COUNT OWNER [SUFFIX]: COUNT empty files PREFIX00000SUFFIX... owned by OWNER.
                DistributedFileSystem fs = fs();
                int count = Integer.parseInt(w[3]);
                for (int i = 0; i < count; i++) {
                    Path file = new Path(w[1], String.format("%s%05d%s", w[2], i, w.length > 5 ? w[5] : ""));
                    fs.create(file, false).close();
                    fs.setOwner(file, w[4], w[4]);
                }
                return w[3];
            }
            case "entries": {
                // entries DIR COUNT: COUNT empty directories DIR/e0000000... (owned by the superuser), made
                // in this JVM straight through the NameNode's RPC server: ~10x faster than over RPC, for
                // directories of hundreds of thousands of entries. Not audited (the audit log stays short).
                return Integer.toString(makeEntries(w[1], Integer.parseInt(w[2])));
            }
            case "fill": {
                // fill PATH BYTES OWNER: a file of BYTES zero bytes (large files for transfer tests).
                DistributedFileSystem fs = fs();
                Path file = new Path(w[1]);
                long left = Long.parseLong(w[2]);
                byte[] zeros = new byte[1 << 20];
                try (FSDataOutputStream out = fs.create(file, true)) {
                    while (left > 0) {
                        int n = (int) Math.min(left, zeros.length);
                        out.write(zeros, 0, n);
                        left -= n;
                    }
                }
                fs.setOwner(file, w[3], w[3]);
                return w[1];
            }
            case "chmod":
                fs().setPermission(new Path(w[1]), new FsPermission(Short.parseShort(w[2], 8)));
                return w[1];
            case "rm":
                return Boolean.toString(fs().delete(new Path(w[1]), true));
            case "quota": {
                // quota PATH BYTES | quota PATH clear: the space quota (bytes of all replicas).
                long bytes = w[2].equals("clear") ? HdfsConstants.QUOTA_RESET : Long.parseLong(w[2]);
                fs().setQuota(new Path(w[1]), HdfsConstants.QUOTA_DONT_SET, bytes);
                return w[1] + " " + w[2];
            }
            case "name-quota": {
                // name-quota PATH COUNT | name-quota PATH clear: how many files and directories PATH may hold,
                // itself included.
                long count = w[2].equals("clear") ? HdfsConstants.QUOTA_RESET : Long.parseLong(w[2]);
                fs().setQuota(new Path(w[1]), count, HdfsConstants.QUOTA_DONT_SET);
                return w[1] + " " + w[2];
            }
            case "safemode": {
                // safemode enter|leave|get
                HdfsConstants.SafeModeAction action = w[1].equals("enter") ? HdfsConstants.SafeModeAction.SAFEMODE_ENTER
                    : w[1].equals("leave") ? HdfsConstants.SafeModeAction.SAFEMODE_LEAVE
                    : HdfsConstants.SafeModeAction.SAFEMODE_GET;
                return fs().setSafeMode(action) ? "on" : "off";
            }
            case "stop-datanode": {
                // stop-datanode N [N...] (0-based, as started): stopped together; their ports stay reserved
                // for start-datanode N.
                List<Integer> indices = new ArrayList<>();
                for (int i = 1; i < w.length; i++) {
                    int index = Integer.parseInt(w[i]);
                    if (stoppedDataNodes.containsKey(index)) {
                        throw new IllegalStateException("DataNode " + index + " is already stopped");
                    }
                    runningIndex(index);
                    indices.add(index);
                }
                for (int index : indices) {
                    stoppedDataNodes.put(index, cluster.stopDataNode(runningIndex(index)));
                }
                return "DataNodes " + indices + " stopped";
            }
            case "start-datanode": {
                int index = Integer.parseInt(w[1]);
                MiniDFSCluster.DataNodeProperties props = stoppedDataNodes.remove(index);
                if (props == null) {
                    throw new IllegalStateException("DataNode " + index + " is not stopped");
                }
                cluster.restartDataNode(props, true);
                cluster.waitActive();
                return "DataNode " + index + " started";
            }
            case "restart-datanode": {
                int index = Integer.parseInt(w[1]);
                cluster.restartDataNode(runningIndex(index), true);
                cluster.waitActive();
                return "DataNode " + index + " restarted";
            }
            case "restart-namenode": {
                // restart-namenode [N]: on its own port; waits until it is up again (and out of safe mode).
                int index = w.length > 1 ? Integer.parseInt(w[1]) : activeNameNode();
                cluster.restartNameNode(index, true);
                if (ha) {
                    // An HA NameNode comes back as standby: it was the active one, so it is again.
                    boolean otherActive = cluster.getNameNode(1 - index).isActiveState();
                    if (!otherActive) {
                        cluster.transitionToActive(index);
                    }
                }
                cluster.waitActive();
                return "NameNode " + index + " restarted";
            }
            case "failover": {
                // failover: the active NameNode becomes standby, the standby active.
                int active = activeNameNode();
                cluster.transitionToStandby(active);
                cluster.transitionToActive(1 - active);
                return "active NameNode " + (1 - active);
            }
            case "stop-namenode": {
                // stop-namenode [N]: the (active) NameNode goes down until start-namenode N.
                int index = w.length > 1 ? Integer.parseInt(w[1]) : activeNameNode();
                cluster.shutdownNameNode(index);
                return "NameNode " + index + " stopped";
            }
            case "start-namenode": {
                // start-namenode [N]: a NameNode stop-namenode stopped comes back on its port.
                int index = w.length > 1 ? Integer.parseInt(w[1]) : 0;
                if (cluster.getNameNode(index) != null) {
                    throw new IllegalStateException("NameNode " + index + " is running");
                }
                return command(new String[] {"restart-namenode", Integer.toString(index)});
            }
            case "active":
                return Integer.toString(activeNameNode());
            case "blocks": {
                // blocks PATH: per block (the one being written included), the DataNodes (N as started)
                // holding it, comma-separated; blocks separated by spaces. Tells a test which DataNode to stop.
                LocatedBlocks located = fs().getClient().getLocatedBlocks(w[1], 0, Long.MAX_VALUE);
                List<LocatedBlock> blocks = new ArrayList<>(located.getLocatedBlocks());
                LocatedBlock last = located.getLastLocatedBlock();
                if (last != null && (blocks.isEmpty()
                        || !blocks.get(blocks.size() - 1).getBlock().equals(last.getBlock()))) {
                    blocks.add(last);
                }
                StringBuilder out = new StringBuilder();
                for (LocatedBlock block : blocks) {
                    StringBuilder holders = new StringBuilder();
                    for (DatanodeInfo holder : block.getLocations()) {
                        holders.append(holders.length() == 0 ? "" : ",").append(dataNodePorts.indexOf(holder.getXferPort()));
                    }
                    out.append(out.length() == 0 ? "" : " ").append(holders.length() == 0 ? "-" : holders);
                }
                return out.toString();
            }
            default:
                throw new IllegalArgumentException("unknown command " + w[0]);
        }
    }

    private int makeEntries(String dir, int count) throws Exception {
        org.apache.hadoop.hdfs.server.protocol.NamenodeProtocols nameNode = cluster.getNameNodeRpc(activeNameNode());
        nameNode.mkdirs(dir, new FsPermission((short) 0755), true);
        org.apache.log4j.Logger audit = org.apache.log4j.Logger.getLogger(
            "org.apache.hadoop.hdfs.server.namenode.FSNamesystem.audit");
        org.apache.log4j.Level auditLevel = audit.getLevel();
        audit.setLevel(org.apache.log4j.Level.WARN);
        try {
            int threads = 4;
            List<Thread> makers = new ArrayList<>();
            List<Exception> failures = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < threads; t++) {
                int first = t;
                Thread maker = new Thread(() -> {
                    try {
                        for (int i = first; i < count; i += threads) {
                            nameNode.mkdirs(String.format("%s/e%07d", dir, i), new FsPermission((short) 0755), false);
                        }
                    } catch (Exception e) {
                        failures.add(e);
                    }
                });
                maker.start();
                makers.add(maker);
            }
            for (Thread maker : makers) {
                maker.join();
            }
            if (!failures.isEmpty()) {
                throw failures.get(0);
            }
        } finally {
            audit.setLevel(auditLevel);
        }
        return count;
    }

    private int activeNameNode() throws IOException {
        if (!ha) {
            return 0;
        }
        for (int i = 0; i < 2; i++) {
            if (cluster.getNameNode(i) != null && cluster.getNameNode(i).isActiveState()) {
                return i;
            }
        }
        throw new IOException("no active NameNode");
    }

    /** MiniDFSCluster renumbers DataNodes as they stop and start: DataNode N is known by its port. */
    private int runningIndex(int index) throws IOException {
        if (index < 0 || index >= dataNodePorts.size()) {
            throw new IllegalArgumentException("no DataNode " + index + " (0 to " + (dataNodePorts.size() - 1) + ")");
        }
        List<DataNode> running = cluster.getDataNodes();
        for (int i = 0; i < running.size(); i++) {
            if (running.get(i).getXferPort() == dataNodePorts.get(index)) {
                return i;
            }
        }
        throw new IllegalStateException("DataNode " + index + " is not running");
    }
}
