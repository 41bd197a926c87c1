"""Fixtures for the FTPS tests: test certificates, a 100 MiB payload, and harness.Daemon servers on free
loopback ports with TLS configured.

    tls_daemon(workdir, certs, extra=(), tls=None) -> a Daemon (not started): user USER/PASSWORD with home
        <workdir>/root/home, TLS from `tls` (the PEM test certificate when None, no TLS when empty) with
        implicit FTPS on .ftps_port
    running_tls(workdir, certs, extra=(), tls=None) -> a context manager: the Daemon, started, then stopped
    tls_server -> one started tls_daemon without TLS requirements, shared by a test module

curl, lftp and openssl must be installed. A missing prerequisite fails the tests, it never skips them.
"""

import contextlib
import ftplib
import os
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from harness import (  # noqa: F401  (free_port, require_tool used by test_tls too)
    REPO,
    Daemon,
    free_port,
    listen_args,
    local_storage_args,
    tls_args,
    users_auth_args,
    write_users_file,
)
from conftest import require_tool  # noqa: F401

CERT_SCRIPT = REPO / "scripts" / "test" / "make-test-cert.sh"
USER, PASSWORD = "alice", "secret-pw"
PAYLOAD_SIZE = 100 << 20
TIMEOUT = 60


def run(args, timeout=TIMEOUT, **kwargs):
    """Runs a command with a timeout, capturing its output as text."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def make_cert(directory):
    require_tool("openssl")
    result = run(["sh", str(CERT_SCRIPT), str(directory)])
    assert result.returncode == 0, result.stderr
    return {
        "cert": directory / "cert.pem",
        "key": directory / "key.pem",
        "p12": directory / "cert.p12",
        "password": directory / "password.txt",
    }


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def payload(tmp_path_factory):
    """100 MiB of random bytes, on tmpfs when there is one so the disk does not set the pace."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path_factory.getbasetemp()
    path = base / f"hdfsftpd-tls-payload-{os.getpid()}.bin"
    with open(path, "wb") as f:
        for _ in range(PAYLOAD_SIZE >> 20):
            f.write(os.urandom(1 << 20))
    yield path
    path.unlink(missing_ok=True)


def same_bytes(a, b):
    """Byte-for-byte comparison, without holding either file in memory."""
    a, b = Path(a), Path(b)
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 22), fb.read(1 << 22)
            if x != y:
                return False
            if not x:
                return True


def tls_daemon(workdir, certs, extra=(), tls=None):
    require_tool("openssl")
    workdir = Path(workdir)
    root = workdir / "root"
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    users_file = write_users_file(workdir / "users", {USER: (PASSWORD, "/home", "rw")})
    port, ftps_port = free_port(), free_port()
    if tls is None:
        tls = tls_args(certs, ftps_port)
    elif tls:
        tls = [*tls, "--ftps-port", str(ftps_port)]
    args = [*listen_args(port), *local_storage_args(root), *users_auth_args(users_file), "--login-fail-delay", "0",
            *tls, *extra]
    return Daemon(workdir, args, port=port, ftps_port=ftps_port, users={USER: PASSWORD}, homes={USER: home},
                  root=root, users_file=users_file)


@contextlib.contextmanager
def running_tls(workdir, certs, extra=(), tls=None):
    server = tls_daemon(workdir, certs, extra, tls).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    """A server with TLS configured and no TLS requirements, shared by the transfer tests."""
    with running_tls(tmp_path_factory.mktemp("tls-server"), certs) as server:
        yield server


def client_context(certs):
    """Verifies the server against the test certificate (its SAN has 127.0.0.1)."""
    context = ssl.create_default_context(cafile=str(certs["cert"]))
    return context


class ImplicitFTP_TLS(ftplib.FTP_TLS):
    """ftplib has no implicit FTPS: wrap the socket in TLS at connect, before the greeting."""

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        self.host, self.port = host, port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((host, port), self.timeout)
        self.sock = self.context.wrap_socket(raw, server_hostname=host)
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


class ResumingFTP_TLS(ftplib.FTP_TLS):
    """Offers the control connection's TLS session on data connections and records whether the
    server resumed it (ftplib alone starts every data connection with a full handshake)."""

    resumed = None

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
            self.resumed = conn.session_reused
        return conn, size
