"""Fixtures for the FTPS tests: test certificates, a 100 MiB payload, and hdfsftpd servers on free
loopback ports with TLS configured.

Self-contained on purpose (no conftest.py): the binary must have been built (`cargo build --release`);
curl, lftp and openssl must be installed. A missing prerequisite fails the tests, it never skips them.
"""

import contextlib
import ftplib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port, require_tool  # noqa: F401  (used by test_tls too)

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "hdfsftpd"
CERT_SCRIPT = ROOT / "scripts" / "make-test-cert.sh"
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


class Server:
    """One hdfsftpd process with a users file and a local root; stderr goes to a log file. TLS comes
    from `tls_args` (the PEM test certificate by default; none when empty), implicit FTPS with it."""

    def __init__(self, workdir, certs, extra=(), tls_args=None):
        require_tool("openssl")
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run 'cargo build --release' first")
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        crypt = run(["openssl", "passwd", "-6", PASSWORD]).stdout.strip()
        users = self.workdir / "users"
        users.write_text(f"{USER}:{crypt}:/home:rw\n")
        self.port, self.ftps_port = free_port(), free_port()
        self.args = [
            str(BINARY),
            "--bind", "127.0.0.1",
            "--ftp-port", str(self.port),
            "--local-root", str(self.root),
            "--users-file", str(users),
            "--login-fail-delay", "0",
        ]  # fmt: skip
        if tls_args is None:
            tls_args = ["--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])]
        if tls_args:
            self.args += ["--ftps-port", str(self.ftps_port), *tls_args]
        self.args += list(extra)
        self.log_path = self.workdir / "server.log"
        self.process = None

    def start(self):
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(self.args, stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while "ready" not in self.log():
            if self.process.poll() is not None:
                pytest.fail(f"hdfsftpd exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"hdfsftpd did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process:
            self.log_file.close()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running(workdir, certs, extra=(), tls_args=None):
    server = Server(workdir, certs, extra, tls_args).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, certs):
    """A server with TLS configured and no TLS requirements, shared by the transfer tests."""
    with running(tmp_path_factory.mktemp("server"), certs) as server:
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
