"""Fixtures for the HDFS backend tests: the real hdfsftpd binary with `--storage hdfs` over Hadoop's local
filesystem (`file:///`, RawLocalFileSystem so append works), the real libhdfs + JVM + Hadoop client jars,
and a small Java program that reads file status through the Hadoop API itself.

Needs HDFSFTPD_HADOOP_JARS (the directory scripts/provision-hadoop.sh prints) and javac 17. Missing
prerequisites fail the tests; nothing is skipped.
"""

import ftplib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "secret"
# FTP users that are also OS accounts on every Debian machine: the local filesystem hands files to their
# owner with chown, which needs an account of that name. On HDFS any name works.
USERS = ("daemon", "nobody")
LOCAL_FS_CONF = "fs.file.impl=org.apache.hadoop.fs.RawLocalFileSystem"

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
    jars = os.environ.get("HDFSFTPD_HADOOP_JARS")
    if not jars:
        pytest.fail("HDFSFTPD_HADOOP_JARS is not set: run scripts/provision-hadoop.sh and export its output")
    jars = Path(jars)
    if not any(jars.glob("hadoop-client-api-*.jar")):
        pytest.fail(f"no Hadoop client jars in {jars}: run scripts/provision-hadoop.sh")
    return jars


@pytest.fixture(scope="session")
def binary():
    given = os.environ.get("HDFSFTPD_BIN")
    if given:
        path = Path(given)
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        path = REPO / "target" / "release" / "hdfsftpd"
    if not os.access(path, os.X_OK):
        pytest.fail(f"no hdfsftpd binary at {path}")
    return path


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


def users_file(path, homes):
    lines = []
    for user, home in homes.items():
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", PASSWORD], capture_output=True, text=True, check=True
        ).stdout.strip()
        lines.append(f"{user}:{hashed}:{home}:rw")
    path.write_text("\n".join(lines) + "\n")
    return path


class Server:
    """One hdfsftpd process with HDFS storage rooted in a temporary directory."""

    def __init__(self, binary, jars, root, extra_args=()):
        self.root = root
        self.homes = {user: root / "user" / user for user in USERS}
        for home in self.homes.values():
            home.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = root.parent / f"hdfsftpd-{self.port}.log"
        users = users_file(root.parent / f"users-{self.port}", {u: str(h) for u, h in self.homes.items()})
        self.args = [
            str(binary), "--bind", "127.0.0.1", "--ftp-port", str(self.port), "--users-file", str(users),
            "--storage", "hdfs", "--hdfs-uri", "file:///", "--hdfs-conf", LOCAL_FS_CONF,
            "--hadoop-classpath", f"{jars}/*", "--hdfs-home", f"{root}/user/%u",
            "--login-fail-delay", "0", *extra_args,
        ]
        self.process = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hdfsftpd exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"hdfsftpd did not listen within 60 s:\n{self.log_text()}")

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout=30):
        """SIGTERM, then the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()

    def ftp(self, user="daemon"):
        client = ftplib.FTP()
        client.connect("127.0.0.1", self.port, timeout=300)
        client.login(user, PASSWORD)
        return client

    def url(self, user, path=""):
        return f"ftp://{user}:{PASSWORD}@127.0.0.1:{self.port}/{path}"

    def home(self, user="daemon"):
        return self.homes[user]


@pytest.fixture
def start_server(binary, hadoop_jars, tmp_path):
    """Starts servers with extra flags; stops them (SIGTERM, exit 0 expected) after the test."""
    servers = []

    def start(*extra_args, name="root"):
        server = Server(binary, hadoop_jars, tmp_path / name, extra_args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        code = server.stop()
        assert code == 0, f"hdfsftpd exited with {code}:\n{server.log_text()}"


@pytest.fixture
def server(start_server):
    return start_server()
