"""Shared fixtures and helpers for the hdfsftpd integration tests.

The tests start the real server binary (target/release/hdfsftpd, or the path in
$HDFSFTPD_BIN) on loopback ports, talk to it with curl, lftp, Python's ftplib
and raw sockets, and check the bytes that land in the server's local root.

Only loopback addresses are ever used.  Every subprocess has a timeout.
"""

import ftplib
import hashlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HDFSFTPD_BIN", REPO / "target" / "release" / "hdfsftpd"))

# HDFSFTPD_TEST_STORAGE=hdfs runs the same suite with the HDFS backend: real libhdfs, JVM and Hadoop client
# jars (HDFSFTPD_HADOOP_JARS, from scripts/provision-hadoop.sh) on Hadoop's local filesystem (file:///).
STORAGE = os.environ.get("HDFSFTPD_TEST_STORAGE", "local")
RAW_LOCAL_FS = "fs.file.impl=org.apache.hadoop.fs.RawLocalFileSystem"

HOST = "127.0.0.1"
HOST6 = "::1"

# name -> (password, home relative to the local root, perms)
USERS = {
    "alice": ("alice-secret", "alice", "rw"),
    "bob": ("bob-secret", "/bob", "r"),
    "carol": ("carol-secret", "carol", "rw"),
}
ANON_HOME = "pub"

KiB = 1024
MiB = 1024 * KiB


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


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


def free_port_range(n):
    """Find N consecutive free ports on 127.0.0.1 below the kernel's ephemeral
    range (so client sockets cannot grab them meanwhile); returns (lo, hi)."""
    import random
    try:
        eph_lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    top = max(eph_lo, 20000 + 2 * n) - n
    for _ in range(200):
        lo = random.randint(20000, top)
        ok = True
        for p in range(lo, lo + n):
            s = socket.socket()
            try:
                s.bind((HOST, p))
            except OSError:
                ok = False
            finally:
                s.close()
            if not ok:
                break
        if ok:
            return lo, lo + n - 1
    raise RuntimeError("no free port range")


def openssl_hash(password):
    out = subprocess.run(
        ["openssl", "passwd", "-6", password],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return out.stdout.strip()


def require_tool(name):
    """Fail (never skip) when a required client is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed "
                    f"(run scripts/install-test-deps.sh)")
    return path


def run(cmd, timeout=120, check=False, **kw):
    """subprocess.run with a timeout; returns CompletedProcess (text)."""
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"command timed out after {timeout}s: {cmd!r}\n"
                    f"stdout={e.stdout!r}\nstderr={e.stderr!r}")
    if check and p.returncode != 0:
        pytest.fail(f"command failed rc={p.returncode}: {cmd!r}\n"
                    f"stdout={p.stdout[-3000:]!r}\nstderr={p.stderr[-3000:]!r}")
    return p


def wait_for(predicate, timeout, what, step=0.05):
    """Polls `predicate` until it holds; fails the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


# --------------------------------------------------------------------------
# the server under test
# --------------------------------------------------------------------------

class Server:
    def __init__(self, base, extra_args=(), v6=False, users=None,
                 use_config_file=False, log_level="info"):
        self.base = Path(base)
        self.root = self.base / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.users = dict(USERS if users is None else users)
        self.v6 = v6
        self.users_file = self.base / "users"
        lines = ["# hdfsftpd test users", ""]
        for name, (pw, home, perms) in self.users.items():
            (self.root / home.strip("/")).mkdir(parents=True, exist_ok=True)
            lines.append(f"{name}:{openssl_hash(pw)}:{self._storage_home(home)}:{perms}")
        (self.root / ANON_HOME).mkdir(parents=True, exist_ok=True)
        lines.append("# anonymous: empty hash, only usable with --anonymous")
        lines.append(f"anonymous::{self._storage_home(ANON_HOME)}:r")
        self.users_file.write_text("\n".join(lines) + "\n")
        self.port = free_port(also_v6=v6)
        self.log_path = self.base / "server.log"
        self.args = self._base_args(use_config_file, log_level) + list(extra_args)
        self.proc = None

    def _storage_home(self, home):
        """A users-file home: relative to the local root, or the absolute path HDFS sees on file:///."""
        if STORAGE == "hdfs":
            return str(self.root / home.strip("/"))
        return "/" + home.strip("/")

    def _storage_settings(self):
        if STORAGE == "local":
            return [("storage", "local"), ("local-root", str(self.root))]
        jars = os.environ.get("HDFSFTPD_HADOOP_JARS")
        if not jars:
            pytest.fail("HDFSFTPD_TEST_STORAGE=hdfs needs HDFSFTPD_HADOOP_JARS (scripts/provision-hadoop.sh)")
        return [("storage", "hdfs"), ("hdfs-uri", "file:///"), ("hdfs-conf", RAW_LOCAL_FS),
                ("hadoop-classpath", f"{jars}/*")]

    def _base_args(self, use_config_file, log_level):
        binds = [HOST] + ([HOST6] if self.v6 else [])
        if use_config_file:
            cfg = self.base / "hdfsftpd.conf"
            body = ["# hdfsftpd test config"]
            body += [f"bind = {b}" for b in binds]
            body += [
                f"ftp-port = {self.port}",
                *[f"{key} = {value}" for key, value in self._storage_settings()],
                "auth = users",
                f"users-file = {self.users_file}",
                f"log-level = {log_level}",
            ]
            cfg.write_text("\n".join(body) + "\n")
            return ["--config", str(cfg)]
        args = []
        for b in binds:
            args += ["--bind", b]
        args += ["--ftp-port", str(self.port)]
        for key, value in self._storage_settings():
            args += [f"--{key}", value]
        args += ["--auth", "users",
                 "--users-file", str(self.users_file), "--log-level", log_level]
        return args

    def home(self, user="alice"):
        if user == "anonymous":
            return self.root / ANON_HOME
        return self.root / self.users[user][1].strip("/")

    def password(self, user="alice"):
        return self.users[user][0]

    def start(self, timeout=10.0):
        if not BIN.exists():
            pytest.fail(f"server binary {BIN} does not exist "
                        f"(run `cargo build --release` first)")
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BIN)] + self.args,
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=self.log_file,
            start_new_session=True,
        )
        LIVE_SERVERS.append(self)
        deadline = time.monotonic() + timeout
        for host in [HOST] + ([HOST6] if self.v6 else []):
            self._wait_banner(host, deadline, timeout)
        if self.proc.poll() is not None:
            pytest.fail(f"server exited early with rc={self.proc.returncode}\n"
                        f"args={self.args}\nlog:\n{self.log_tail()}")
        return self

    def _wait_banner(self, host, deadline, timeout):
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited early with rc={self.proc.returncode}\n"
                            f"args={self.args}\nlog:\n{self.log_tail()}")
            try:
                with socket.create_connection((host, self.port), timeout=2) as s:
                    f = s.makefile("rb")
                    line = f.readline()
                    if line.startswith(b"220"):
                        # read rest of a multi-line banner, then say goodbye so
                        # this probe is not counted against per-IP limits later
                        while line[3:4] == b"-" or not line.startswith(b"220 "):
                            line = f.readline()
                            if not line:
                                break
                        try:
                            s.sendall(b"QUIT\r\n")
                            f.readline()
                        except OSError:
                            pass
                        # give the server a moment to notice the close
                        time.sleep(0.1)
                        return self
                    last_err = f"unexpected banner {line!r}"
            except OSError as e:
                last_err = e
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"server did not send a 220 banner on {host} within {timeout}s "
                    f"({last_err})\nargs={self.args}\nlog:\n{self.log_tail()}")

    def stop(self):
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.proc = None
        try:
            self.log_file.close()
        except Exception:
            pass

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_for_log(self, predicate, timeout=5.0):
        """Poll the log until predicate(line_lowercase) holds for some line."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_text().lower().splitlines():
                if predicate(line):
                    return line
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)

    # ---- clients -------------------------------------------------------
    def ftp(self, user="alice", password=None, host=HOST, timeout=30):
        """A logged-in ftplib.FTP (binary mode not yet selected)."""
        f = ftplib.FTP(timeout=timeout, encoding="utf-8")
        f.connect(host, self.port)
        if user is not None:
            f.login(user, self.password(user) if password is None else password)
        return f

    def url(self, path="", user="alice", host=HOST):
        pw = self.password(user) if user != "anonymous" else "x"
        h = f"[{host}]" if ":" in host else host
        return f"ftp://{user}:{pw}@{h}:{self.port}/{path}"

    def raw(self, user="alice", host=HOST, timeout=10):
        c = RawFTP(host, self.port, timeout=timeout)
        if user is not None:
            c.login(user, self.password(user))
        return c


# --------------------------------------------------------------------------
# raw control connection
# --------------------------------------------------------------------------

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


def recv_all(sock, timeout=30):
    sock.settimeout(timeout)
    out = []
    while True:
        b = sock.recv(1 << 16)
        if not b:
            break
        out.append(b)
    sock.close()
    return b"".join(out)


# --------------------------------------------------------------------------
# curl / lftp helpers
# --------------------------------------------------------------------------

def curl(*args, timeout=180, check=True):
    require_tool("curl")
    cmd = ["curl", "-sS", "--connect-timeout", "10", "--max-time", str(timeout - 5)]
    cmd += [str(a) for a in args]
    return run(cmd, timeout=timeout, check=check)


LFTP_PRELUDE = ("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 10; "
                "set net:reconnect-interval-base 1; set ftp:ssl-allow no; "
                "set xfer:clobber on; set cmd:interactive no; ")


def lftp(server, script, user="alice", host=HOST, settings="", timeout=180, check=True):
    require_tool("lftp")
    pw = server.password(user) if user != "anonymous" else "x"
    h = f"[{host}]" if ":" in host else host
    full = (LFTP_PRELUDE + settings +
            f" open -u {shlex.quote(user)},{shlex.quote(pw)} -p {server.port} {h}; " + script)
    return run(["lftp", "-c", full], timeout=timeout, check=check,
               stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# listing parsers
# --------------------------------------------------------------------------

LIST_RE = re.compile(
    r"^(?P<perm>[-dlbcps][-rwxsStT]{9})[+@.]?\s+(?P<links>\d+)\s+(?P<owner>\S+)\s+"
    r"(?P<group>\S+)\s+(?P<size>\d+)\s+(?P<date>\w{3}\s+\d{1,2}\s+[\d:]{4,5})\s(?P<name>.+)$")


def parse_list(lines):
    """Parse `ls -l` style LIST output -> {name: dict(perm, size, ...)}."""
    out = {}
    for ln in lines:
        if not ln.strip() or ln.startswith("total "):
            continue
        m = LIST_RE.match(ln)
        assert m, f"LIST line not in ls -l format: {ln!r}"
        d = m.groupdict()
        d["size"] = int(d["size"])
        out[d["name"]] = d
    return out


def parse_mlsx(line):
    """Parse one MLSD/MLST entry 'fact=v;fact=v; name' -> (name, {fact: v})."""
    line = line.lstrip(" ")
    facts_s, _, name = line.partition(" ")
    facts = {}
    for f in facts_s.split(";"):
        if not f:
            continue
        k, _, v = f.partition("=")
        facts[k.lower()] = v
    return name, facts


def mlsd(ftp, path=""):
    lines = []
    ftp.retrlines(f"MLSD {path}".strip(), lines.append)
    out = {}
    for ln in lines:
        name, facts = parse_mlsx(ln)
        out[name] = facts
    return out


def list_lines(ftp, path=""):
    lines = []
    ftp.retrlines(f"LIST {path}".strip(), lines.append)
    return lines


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

# Safety net so that a hung server can never eat CI's time budget: every test
# gets a generous per-test timeout when pytest-timeout is installed (it is in
# tests/requirements.txt).  Socket and subprocess timeouts bound most waits
# anyway.
PER_TEST_TIMEOUT = 300


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("timeout"):
        for item in items:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(PER_TEST_TIMEOUT))


LIVE_SERVERS = []


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    # On a failure, attach the tail of every running server's log.
    if rep.failed and rep.when in ("setup", "call"):
        for s in LIVE_SERVERS:
            rep.sections.append((f"hdfsftpd log {s.log_path}", s.log_tail(80)))


@pytest.fixture(scope="session", autouse=True)
def _check_prereqs():
    if not BIN.exists():
        pytest.fail(f"server binary {BIN} does not exist (run `cargo build --release`)")
    for t in ("curl", "lftp", "openssl"):
        require_tool(t)


def _make_factory(tmp_factory, registry):
    counter = [0]

    def factory(*extra_args, v6=False, users=None, use_config_file=False,
                log_level="info", start=True):
        counter[0] += 1
        base = tmp_factory.mktemp(f"srv{counter[0]}")
        s = Server(base, extra_args=extra_args, v6=v6, users=users,
                   use_config_file=use_config_file, log_level=log_level)
        registry.append(s)
        if start:
            s.start()
        return s
    return factory


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory for a fresh server with extra flags; stopped after the test."""
    servers = []
    yield _make_factory(tmp_path_factory, servers)
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One default server shared by a test module."""
    servers = []
    s = _make_factory(tmp_path_factory, servers)()
    yield s
    for x in servers:
        x.stop()


@pytest.fixture
def ftp(server):
    """Logged-in ftplib session as alice (rw) on the module server."""
    f = server.ftp()
    yield f
    try:
        f.quit()
    except Exception:
        f.close()


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """A 100 MiB file of pseudo-random bytes (created once)."""
    p = tmp_path_factory.mktemp("data") / "big100m.bin"
    chunk = os.urandom(MiB)
    with open(p, "wb") as f:
        for i in range(100):
            # vary chunks so a misplaced block is detected
            f.write(bytes([i]) + chunk[1:])
    return p


def make_payload(size, seed=0):
    if size == 0:
        return b""
    base = hashlib.sha256(f"seed{seed}".encode()).digest()
    rnd = os.urandom(min(size, 4096))
    data = (base + rnd) * (size // (len(base) + len(rnd)) + 1)
    return data[:size]
