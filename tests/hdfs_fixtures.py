"""Fixtures for the HDFS backend tests: the real hdfsftpd binary with `--storage hdfs` on a real HDFS (the
session's shared cluster, tests/hdfs_cluster.py), with permissions on. Every server gets users of its own,
created with `scripts/hdfs-cluster.sh add-user` (home /user/NAME, owned by NAME, mode 0700), so tests on the
shared cluster never see each other's files; sessions act as those users, never as the HDFS superuser.

Needs HDFSFTPD_HADOOP_JARS (the client jar directory scripts/provision-hadoop.sh prints). Missing
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
from hdfs_cluster import hdfs_cluster, unique_user  # noqa: F401  (fixtures are found by name)

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "secret"


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
    path = Path(os.environ.get("HDFSFTPD_BIN", REPO / "target" / "release" / "hdfsftpd"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"no hdfsftpd binary at {path} (cargo build --release)")
    return path


def users_file(path, homes):
    """NAME:HASH:HOME:rw lines; an empty home is the default, /user/NAME."""
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    path.write_text("".join(f"{user}:{hashed}:{home}:rw\n" for user, home in homes.items()))
    return path


class Server:
    """One hdfsftpd process on the cluster, with two users of its own (`user`, `other`) and, when asked,
    a user whose home is /user, from where the others' homes can be reached (and refused by HDFS)."""

    def __init__(self, binary, cluster, scratch, extra_args=()):
        self.cluster = cluster
        self.scratch = scratch
        self.user = unique_user("ann")
        self.other = unique_user("bob")
        self.browser = unique_user("eve")
        for name in (self.user, self.other, self.browser):
            cluster.add_user(name, PASSWORD)
        self.port = free_port()
        self.log_path = scratch / f"hdfsftpd-{self.port}.log"
        users = users_file(scratch / f"users-{self.port}", {self.user: "", self.other: "", self.browser: "/user"})
        self.args = [
            str(binary), "--bind", "127.0.0.1", "--ftp-port", str(self.port), "--users-file", str(users),
            *cluster.server_args(), "--login-fail-delay", "0", *extra_args,
        ]
        self.process = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hdfsftpd exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"hdfsftpd did not listen within 120 s:\n{self.log_text()}")

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

    def ftp(self, user=None):
        client = ftplib.FTP()
        client.connect("127.0.0.1", self.port, timeout=300)
        client.login(user or self.user, PASSWORD)
        return client

    def url(self, path="", user=None):
        return f"ftp://{user or self.user}:{PASSWORD}@127.0.0.1:{self.port}/{path}"

    def home(self, user=None):
        """The user's home in HDFS."""
        return f"/user/{user or self.user}"

    # What HDFS recorded, read without the gateway.
    def stat(self, name, user=None):
        return self.cluster.stat(f"{self.home(user)}/{name}")

    def read(self, name, user=None):
        return self.cluster.read(f"{self.home(user)}/{name}", self.scratch)

    def write(self, name, data, user=None):
        user = user or self.user
        self.cluster.write(f"{self.home(user)}/{name}", data, self.scratch, owner=user)

    def ls(self, user=None):
        return self.cluster.ls(self.home(user))


@pytest.fixture
def start_server(binary, hdfs_cluster, tmp_path):
    """Starts servers with extra flags; stops them (SIGTERM, exit 0 expected) after the test."""
    servers = []

    def start(*extra_args):
        server = Server(binary, hdfs_cluster, tmp_path, extra_args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        code = server.stop()
        assert code == 0, f"hdfsftpd exited with {code}:\n{server.log_text()}"


@pytest.fixture
def server(start_server):
    return start_server()
