"""Fixtures for the Kerberos login tests: a real MIT KDC (tests/kdc.py) and the real server binary
with `--auth krb5 --storage local`, driven by ftplib. Independent of conftest.py."""

import ftplib
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import free_port, wait_for  # noqa: F401  (re-exported to test_krb5)
from kdc import Realm

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HDFSFTPD_BIN", REPO / "target" / "release" / "hdfsftpd"))
HOST = "127.0.0.1"
REALM = "HDFSFTPD.TEST"
SERVICE = "ftp/localhost"

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
MANY = {f"user{i:02d}": f"secret-{i:02d}" for i in range(16)}


@pytest.fixture
def realm(tmp_path):
    """A running realm with USERS and MANY, and the server's keytab at realm.keytab."""
    realm = Realm(tmp_path / "kdc", REALM).start()
    try:
        realm.add_users({**USERS, **MANY})
        realm.keytab = realm.add_service(SERVICE, realm.dir / "ftp.keytab")
        yield realm
    finally:
        realm.stop()


class KrbServer:
    """hdfsftpd --auth krb5 on local storage; homes /<user> exist for every user of the realm fixture."""

    def __init__(self, base, realm, extra_args=(), keytab=None, env_realm=None, storage="local"):
        self.base = Path(base)
        self.realm = realm
        self.root = self.base / "root"
        for user in (*USERS, *MANY):
            (self.root / user).mkdir(parents=True, exist_ok=True)
        self.ccache_dir = self.base / "ccaches"
        self.port = free_port()
        self.log_path = self.base / "server.log"
        self.env = (env_realm or realm).env
        keytab = realm.keytab if keytab is None else keytab
        self.args = [
            "--bind", HOST, "--ftp-port", str(self.port), *storage_args(storage, self.root),
            "--auth", "krb5", "--krb5-keytab", str(keytab), "--krb5-service", SERVICE,
            "--krb5-ccache-dir", str(self.ccache_dir), "--login-fail-delay", "0.5", "--log-level", "debug",
            *extra_args,
        ]
        self.proc = None

    def start(self):
        if not BIN.exists():
            pytest.fail(f"server binary {BIN} does not exist (run `cargo build --release` first)")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(BIN), *self.args], env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        def listening():
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, 15, "the server to listen")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern, timeout=10):
        wait_for(lambda: re.search(pattern, self.log()), timeout, f"log line /{pattern}/")

    def connect(self, source=None):
        ftp = ftplib.FTP(timeout=30)
        ftp.connect(HOST, self.port, source_address=(source, 0) if source else None)
        return ftp

    def login(self, user, password, source=None):
        ftp = self.connect(source)
        ftp.login(user, password)
        return ftp

    def caches(self):
        """Ticket cache files now in the server's cache directory."""
        return sorted(self.ccache_dir.iterdir()) if self.ccache_dir.exists() else []


def storage_args(storage, root):
    """Local disk, or HDFS through libhdfs + JVM on Hadoop's local filesystem with homes under `root`."""
    if storage == "local":
        return ["--storage", "local", "--local-root", str(root)]
    jars = os.environ.get("HDFSFTPD_HADOOP_JARS")
    if not jars:
        pytest.fail("HDFSFTPD_HADOOP_JARS is not set: run scripts/provision-hadoop.sh and export its output")
    return ["--storage", "hdfs", "--hdfs-uri", "file:///", "--hdfs-conf",
            "fs.file.impl=org.apache.hadoop.fs.RawLocalFileSystem", "--hadoop-classpath", f"{jars}/*",
            "--hdfs-home", f"{root}/%u"]


@pytest.fixture
def krb_server(tmp_path, realm):
    """Factory: krb_server(*extra_args, keytab=None, env_realm=None, storage="local") starts a server; all
    stop at teardown."""
    servers = []

    def make(*extra_args, keytab=None, env_realm=None, storage="local"):
        server = KrbServer(tmp_path / f"server{len(servers)}", realm, extra_args, keytab, env_realm, storage)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
