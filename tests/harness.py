"""The one way the integration tests run hdfsftpd: the `Daemon` class and the argument builders.

    port = free_port()
    args = [*listen_args(port), *local_storage_args(root), *users_auth_args(users_file), "--max-clients", "4"]
    daemon = Daemon(workdir, args, port=port, users={"alice": "pw"}, homes={"alice": root / "alice"})
    daemon.start()            # returns once the server logged that it is ready; fails the test if it exits first
    daemon.ftp()              # a logged-in ftplib.FTP as the first user (ftp(user, password, source=...))
    daemon.log_text(), daemon.log_tail(), daemon.wait_for_log("regex")
    daemon.stop()             # SIGTERM, SIGKILL after `timeout` seconds; returns the exit code

- The binary is $HDFSFTPD_BIN or target/release/hdfsftpd (`BIN`); the harness never builds it, and a
  missing binary fails the test.
- Ready means one thing: the log line "hdfsftpd <version> ready: <n> workers", which the server writes
  after every listener is bound and storage, authentication and TLS are built (so --log-level must be
  info or finer, the default). A TCP connect alone would succeed before that.
- The process runs in a session of its own with stdin closed; stdout and stderr go to `log_path`
  (`--log-file` in the arguments moves it there). RUST_LOG is dropped from the environment; `env` adds
  or overrides variables (a Kerberos realm's KRB5_CONFIG, for example). `--daemon` is not for Daemon:
  a forking server is run with `run()` and stopped by its pid file.
- Every running Daemon's log tail is attached to the report of a failing test (conftest.py).

Argument builders (each returns a list of flags): listen_args, local_storage_args, hdfs_storage_args,
users_auth_args (with write_users_file), krb5_auth_args, tls_args; config_file_args turns flags into a
--config file. Fixtures that combine them: conftest.py (`make_server`, `server`: users file, local storage
or $HDFSFTPD_TEST_STORAGE=hdfs), hdfs_fixtures.py (`start_hdfs_server`, `hdfs_server`), krb5_fixtures.py
(`krb_server`), tls_fixtures.py (`tls_server`, `running_tls`).
"""

import ftplib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HDFSFTPD_BIN", REPO / "target" / "release" / "hdfsftpd"))
HOST = "127.0.0.1"
HOST6 = "::1"
LOCAL_FS_CONF = "fs.file.impl=org.apache.hadoop.fs.RawLocalFileSystem"

# Generous bounds on waits, not speed assertions: a JVM start on a loaded 2-core machine takes a while.
READY_TIMEOUT = 60
STOP_TIMEOUT = 30
READY_LINE = re.compile(rb"hdfsftpd \S+ ready: \d+ workers")

# Daemons started and not yet stopped, for the failure report.
RUNNING = []


def binary():
    """The server binary; fails the test when it has not been built."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"server binary {BIN} does not exist (run `cargo build --release` or set HDFSFTPD_BIN)")
    return BIN


def wait_for(predicate, timeout, what, step=0.05):
    """Polls `predicate` until it holds; fails the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def free_port(family=socket.AF_INET, host=HOST, also_v6=False):
    """A port that is currently free on HOST (and on ::1 when also_v6)."""
    for _ in range(50):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((host, 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if also_v6:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            try:
                s6.bind((HOST6, port))
            except OSError:
                continue
            finally:
                s6.close()
        return port
    raise RuntimeError("could not find a free port")


def openssl_hash(password):
    out = subprocess.run(["openssl", "passwd", "-6", password], capture_output=True, text=True, timeout=30,
                         check=True)
    return out.stdout.strip()


# --------------------------------------------------------------------------------------------------
# argument builders
# --------------------------------------------------------------------------------------------------

def listen_args(port, hosts=(HOST,)):
    return [*(arg for host in hosts for arg in ("--bind", host)), "--ftp-port", str(port)]


def local_storage_args(root):
    return ["--storage", "local", "--local-root", str(root)]


def hadoop_jars():
    """The Hadoop client jars directory (HDFSFTPD_HADOOP_JARS, from scripts/cluster/provision-hadoop.sh)."""
    jars = os.environ.get("HDFSFTPD_HADOOP_JARS")
    if not jars:
        pytest.fail("HDFSFTPD_HADOOP_JARS is not set: run scripts/cluster/provision-hadoop.sh and export its output")
    jars = Path(jars)
    if not any(jars.glob("hadoop-client-api-*.jar")):
        pytest.fail(f"no Hadoop client jars in {jars}: run scripts/cluster/provision-hadoop.sh")
    return jars


def hdfs_storage_args(home_pattern=None):
    """HDFS through libhdfs + JVM on Hadoop's local filesystem (file:///, RawLocalFileSystem so append
    works); `home_pattern` is --hdfs-home (an absolute path with %u)."""
    args = ["--storage", "hdfs", "--hdfs-uri", "file:///", "--hdfs-conf", LOCAL_FS_CONF,
            "--hadoop-classpath", f"{hadoop_jars()}/*"]
    return args + (["--hdfs-home", str(home_pattern)] if home_pattern else [])


def write_users_file(path, users):
    """users: name -> (password, home as the storage sees it, perms); an empty password writes an empty
    hash (the anonymous entry). Returns the path."""
    lines = ["# hdfsftpd test users"]
    for name, (password, home, perms) in users.items():
        lines.append(f"{name}:{openssl_hash(password) if password else ''}:{home}:{perms}")
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def users_auth_args(users_file):
    return ["--auth", "users", "--users-file", str(users_file)]


def krb5_auth_args(keytab, service, ccache_dir):
    return ["--auth", "krb5", "--krb5-keytab", str(keytab), "--krb5-service", service,
            "--krb5-ccache-dir", str(ccache_dir)]


def tls_args(certs, ftps_port=None):
    """The PEM test certificate (tls_fixtures.make_cert), and implicit FTPS on ftps_port when given."""
    args = ["--tls-cert", str(certs["cert"]), "--tls-key", str(certs["key"])]
    return args + (["--ftps-port", str(ftps_port)] if ftps_port else [])


def config_file_args(path, args):
    """Writes `--key value` flags as a --config file (`key = value` lines); returns ["--config", path]."""
    lines = ["# hdfsftpd test config"]
    for flag, value in zip(args[::2], args[1::2]):
        assert flag.startswith("--") and not value.startswith("--"), f"not a --key value pair: {flag} {value}"
        lines.append(f"{flag[2:]} = {value}")
    Path(path).write_text("\n".join(lines) + "\n")
    return ["--config", str(path)]


# --------------------------------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------------------------------

class Daemon:
    """One hdfsftpd process. `args` is everything after the binary and must make it listen on `port`
    (listen_args). `users` (name -> password) and `homes` (name -> directory on disk) are what the
    arguments set up; the first user is the default of ftp(), url(), raw(), password() and home()."""

    def __init__(self, workdir, args, *, port, ftps_port=None, hosts=(HOST,), env=None, users=None,
                 homes=None, root=None, users_file=None, client_timeout=30):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.args = [str(a) for a in args]
        self.port, self.ftps_port, self.hosts = port, ftps_port, tuple(hosts)
        self.env = dict(env or {})
        self.users = dict(users or {})
        # Paths on disk, or tests/hdfs_cluster.HdfsPaths on a real HDFS.
        self.homes = {name: Path(home) if isinstance(home, (str, os.PathLike)) else home
                      for name, home in (homes or {}).items()}
        self.root, self.users_file = root, users_file
        self.client_timeout = client_timeout
        log_file = [value for flag, value in zip(self.args, self.args[1:]) if flag == "--log-file"]
        self.log_path = Path(log_file[-1]) if log_file else self.workdir / f"hdfsftpd-{port}.log"
        self.proc = None

    @property
    def default_user(self):
        return next(iter(self.users))

    def start(self, timeout=READY_TIMEOUT):
        """Starts the server and waits until it logs that it is ready."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {key: value for key, value in os.environ.items() if key != "RUST_LOG"}
        env.update(self.env)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(binary()), *self.args], env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while not READY_LINE.search(self._log_bytes(offset)):
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"hdfsftpd exited with {self.proc.returncode} before it was ready\n"
                            f"args={self.args}\nlog:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"hdfsftpd did not log that it is ready within {timeout}s\n"
                            f"args={self.args}\nlog:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code (None if never started)."""
        if self in RUNNING:
            RUNNING.remove(self)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    # ---- the log ----------------------------------------------------------------------------------
    def _log_bytes(self, offset=0):
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read()
        except FileNotFoundError:
            return b""

    def log_text(self):
        return self._log_bytes().decode(errors="replace")

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_for_log(self, match, timeout=10):
        """Waits for a log line and returns it. `match` is a regex searched in each line, or a predicate
        called with each line in lower case. Fails the test after `timeout` seconds."""
        if callable(match):
            found = lambda line: match(line.lower())  # noqa: E731
        else:
            found = re.compile(match).search
        lines = []

        def logged():
            lines[:] = [line for line in self.log_text().splitlines() if found(line)]
            return bool(lines)
        try:
            wait_for(logged, timeout, f"a log line matching {match!r}")
        except pytest.fail.Exception as e:
            pytest.fail(f"{e}\nlog:\n{self.log_tail()}")
        return lines[0]

    # ---- clients ----------------------------------------------------------------------------------
    def password(self, user=None):
        return self.users[user or self.default_user]

    def home(self, user=None):
        return self.homes[user or self.default_user]

    def ftp(self, user=None, password=None, source=None, *, host=HOST, login=True, timeout=None):
        """An ftplib.FTP connected from `source` (a loopback address) and logged in unless login=False."""
        client = ftplib.FTP(timeout=timeout or self.client_timeout, encoding="utf-8")
        client.connect(host, self.port, source_address=(source, 0) if source else None)
        if login:
            client.login(user or self.default_user, self.password(user) if password is None else password)
        return client

    def url(self, path="", user=None, host=HOST):
        user = user or self.default_user
        h = f"[{host}]" if ":" in host else host
        return f"ftp://{user}:{self.password(user)}@{h}:{self.port}/{path}"

    def raw(self, user=None, host=HOST, timeout=10, login=True):
        """A RawFTP control connection, logged in unless login=False."""
        client = RawFTP(host, self.port, timeout=timeout)
        if login:
            user = user or self.default_user
            client.login(user, self.password(user))
        return client


# --------------------------------------------------------------------------------------------------
# raw control connection
# --------------------------------------------------------------------------------------------------

class RawFTP:
    """A minimal FTP control connection on a plain socket."""

    def __init__(self, host, port, timeout=10):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.banner = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def cmd(self, line):
        """Send one command line (CRLF added) and return the reply."""
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.reply()

    def readline(self, timeout=None):
        """One line without CRLF (bytes); None on EOF."""
        if timeout is not None:
            old = self.sock.gettimeout()
            self.sock.settimeout(timeout)
        try:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    rest, self.buf = self.buf, b""
                    return rest if rest else None
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            return line.rstrip(b"\r")
        finally:
            if timeout is not None:
                self.sock.settimeout(old)

    def reply(self, timeout=None):
        """Read a full (possibly multi-line) reply and return its text, all
        lines joined with '\\n'.  Returns '' on EOF before any line.
        Connection resets count as EOF.  Leading Telnet IAC sequences are
        stripped."""
        try:
            first = self.readline(timeout)
        except (ConnectionResetError, BrokenPipeError):
            return ""
        if first is None:
            return ""
        first = _strip_iac(first)
        lines = [first.decode("utf-8", "replace")]
        if first[3:4] == b"-":
            code = first[:3]
            for _ in range(100000):
                ln = self.readline(timeout)
                if ln is None:
                    break
                lines.append(ln.decode("utf-8", "replace"))
                if ln[:3] == code and ln[3:4] == b" ":
                    break
        return "\n".join(lines)

    def login(self, user, password):
        r = self.cmd(f"USER {user}")
        if r.startswith("331"):
            r = self.cmd(f"PASS {password}")
        assert r.startswith("230"), f"login as {user} failed: {r!r}"
        return r

    def pasv(self):
        """Send PASV and return a connected data socket."""
        r = self.cmd("PASV")
        assert r.startswith("227"), r
        m = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", r)
        h = ".".join(m.group(i) for i in range(1, 5))
        port = int(m.group(5)) * 256 + int(m.group(6))
        return socket.create_connection((h, port), timeout=10)

    def epsv(self):
        r = self.cmd("EPSV")
        assert r.startswith("229"), r
        port = int(re.search(r"\(\|\|\|(\d+)\|\)", r).group(1))
        return socket.create_connection((self.host, port), timeout=10)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _strip_iac(line):
    while line[:1] == b"\xff" and len(line) >= 2:
        line = line[3:] if line[1:2] in (b"\xfb", b"\xfc", b"\xfd", b"\xfe") else line[2:]
    return line


def open_transfer(client, command):
    """Sends COMMAND (an ftplib client's) over a passive data connection; the data socket once the 150 came."""
    reply = client.sendcmd("PASV")
    numbers = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", reply).groups()
    data = socket.create_connection((".".join(numbers[:4]), int(numbers[4]) * 256 + int(numbers[5])), timeout=120)
    client.putcmd(command)
    reply = client.getresp()
    assert reply.startswith("150"), reply
    return data
