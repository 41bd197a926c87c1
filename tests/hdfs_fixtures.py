"""Fixtures for the HDFS backend tests: harness.Daemon running the real hdfsftpd binary with `--storage hdfs`
over Hadoop's local filesystem (`file:///`, RawLocalFileSystem so append works), the real libhdfs + JVM +
Hadoop client jars, and a small Java program that reads file status through the Hadoop API itself.

    start_hdfs_server(*extra_args, name="root") -> a started Daemon (users daemon and nobody, password
        PASSWORD, homes <tmp>/<name>/user/<user>); each is stopped after the test, exit code 0 expected
    hdfs_server -> start_hdfs_server() with no extra arguments
    hadoop_stat(*paths) -> what Hadoop itself records (owner, group, size, mode, mtime_ms)

Needs HDFSFTPD_HADOOP_JARS (the directory scripts/provision-hadoop.sh prints) and javac 17. Missing
prerequisites fail the tests; nothing is skipped.
"""

import subprocess

import pytest

from harness import Daemon, free_port, hdfs_storage_args, listen_args, users_auth_args, write_users_file
from harness import hadoop_jars as find_hadoop_jars

PASSWORD = "secret"
# FTP users that are also OS accounts on every Debian machine: the local filesystem hands files to their
# owner with chown, which needs an account of that name. On HDFS any name works.
USERS = ("daemon", "nobody")

HADOOP_STAT_JAVA = """
import java.net.URI;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/** Prints owner, group, length, permission and modification time (ms) of each path, tab-separated. */
public class HadoopStat {
    public static void main(String[] args) throws Exception {
        Configuration conf = new Configuration();
        conf.set("fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem");
        FileSystem fs = FileSystem.get(URI.create("file:///"), conf);
        for (String arg : args) {
            FileStatus status = fs.getFileStatus(new Path(arg));
            System.out.println(status.getOwner() + "\\t" + status.getGroup() + "\\t" + status.getLen() + "\\t"
                + status.getPermission() + "\\t" + status.getModificationTime());
        }
    }
}
"""


@pytest.fixture(scope="session")
def hadoop_jars():
    return find_hadoop_jars()


@pytest.fixture(scope="session")
def hadoop_stat(hadoop_jars, tmp_path_factory):
    """Reads file status through Hadoop's own FileSystem API, not through hdfsftpd."""
    out = tmp_path_factory.mktemp("hadoop-stat")
    (out / "HadoopStat.java").write_text(HADOOP_STAT_JAVA)
    class_path = f"{hadoop_jars}/*"
    subprocess.run(["javac", "-cp", class_path, "-d", str(out), str(out / "HadoopStat.java")], check=True)

    def stat(*paths):
        result = subprocess.run(
            ["java", "-cp", f"{class_path}:{out}", "HadoopStat", *map(str, paths)],
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        rows = [line.split("\t") for line in result.stdout.splitlines()]
        return [
            {"owner": r[0], "group": r[1], "size": int(r[2]), "mode": r[3], "mtime_ms": int(r[4])} for r in rows
        ]

    return stat


def hdfs_daemon(workdir, extra_args=()):
    """A Daemon (not started) with HDFS storage, its homes under workdir/root/user."""
    root = workdir / "root"
    homes = {user: root / "user" / user for user in USERS}
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    users_file = write_users_file(workdir / "users", {user: (PASSWORD, home, "rw") for user, home in homes.items()})
    args = [*listen_args(port), *users_auth_args(users_file), *hdfs_storage_args(f"{root}/user/%u"),
            "--login-fail-delay", "0", *extra_args]
    return Daemon(workdir, args, port=port, users={user: PASSWORD for user in USERS}, homes=homes, root=root,
                  users_file=users_file, client_timeout=300)


@pytest.fixture
def start_hdfs_server(hadoop_jars, tmp_path):
    """Starts HDFS servers with extra flags; stops them (SIGTERM, exit 0 expected) after the test."""
    servers = []

    def start(*extra_args, name="root"):
        server = hdfs_daemon(tmp_path / name, extra_args)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        code = server.stop()
        assert code == 0, f"hdfsftpd exited with {code}:\n{server.log_tail()}"


@pytest.fixture
def hdfs_server(start_hdfs_server):
    return start_hdfs_server()
