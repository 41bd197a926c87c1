"""Shared fixtures and helpers for the hdfsftpd integration tests.

Servers run through harness.Daemon (see harness.py for the one way to start, wait for and stop one).
Here: `users_server`, the server most tests use (the users file of USERS, an anonymous entry, local
storage or $HDFSFTPD_TEST_STORAGE=hdfs), and its fixtures:

    make_server(*extra_args, env=None, v6=False, users=None, use_config_file=False, log_level="info",
                start=True)   -> a Daemon, stopped after the test (function scope)
    server                    -> one started default Daemon shared by a test module
    ftp                       -> an ftplib session as alice on `server`

plus clients (RawFTP, curl, lftp), listing parsers and payload helpers. The tests talk to the real binary
with curl, lftp, Python's ftplib and raw sockets, and check the bytes that land in the server's storage.
Only loopback addresses are ever used. Every subprocess has a timeout.
"""

import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from harness import (  # noqa: F401  (re-exported to the test modules)
    BIN,
    HOST,
    HOST6,
    REPO,
    RUNNING,
    Daemon,
    RawFTP,
    binary,
    config_file_args,
    free_port,
    hdfs_storage_args,
    listen_args,
    local_storage_args,
    openssl_hash,
    users_auth_args,
    wait_for,
    write_users_file,
)

from hdfs_cluster import HdfsPath, hdfs_cluster, listdir  # noqa: F401  (hdfs_cluster: a session fixture)

# HDFSFTPD_TEST_STORAGE=hdfs runs the same suite with the HDFS backend on a real HDFS: the session's shared
# cluster (tests/hdfs_cluster.py), real libhdfs and JVM. A server's homes are then HdfsPaths, which read and
# write through the cluster's own Hadoop API, so the tests check what HDFS recorded.
STORAGE = os.environ.get("HDFSFTPD_TEST_STORAGE", "local")
# The shared cluster, set by the session fixture _storage_cluster when STORAGE is hdfs.
SHARED_CLUSTER = []

# name -> (password, home relative to the storage root, perms)
USERS = {
    "alice": ("alice-secret", "alice", "rw"),
    "bob": ("bob-secret", "/bob", "r"),
    "carol": ("carol-secret", "carol", "rw"),
}
ANON_HOME = "pub"
# Anonymous logins take any password; the tests send this one.
ANON_PASSWORD = "x"

KiB = 1024
MiB = 1024 * KiB


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def sha256_file(path):
    if isinstance(path, HdfsPath):
        return sha256_bytes(path.read_bytes())
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


def require_tool(name):
    """Fail (never skip) when a required client is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"required tool {name!r} is not installed "
                    f"(run scripts/install/install-test-deps.sh)")
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


# --------------------------------------------------------------------------
# the server most tests use
# --------------------------------------------------------------------------

def users_server(base, *extra_args, users=None, v6=False, use_config_file=False, log_level="info", env=None,
                 port=None, hosts=None):
    """A Daemon (not started) that authenticates against a users file of `users` (default USERS) plus an
    anonymous entry (only usable with --anonymous), on local storage under base/root or, with
    HDFSFTPD_TEST_STORAGE=hdfs, on the shared HDFS cluster under /servers/<base name>, each home owned by
    its user. `hosts` defaults to
    127.0.0.1 (and ::1 when v6); `use_config_file` puts everything but extra_args in a --config file."""
    base = Path(base)
    users = dict(USERS if users is None else users)
    if STORAGE == "hdfs":
        root = HdfsPath(SHARED_CLUSTER[0], f"/servers/{base.name}", "root", base)
        homes = {name: root.owned_by(name) / home.strip("/") for name, (_, home, _) in users.items()}
        homes["anonymous"] = root.owned_by("anonymous") / ANON_HOME
    else:
        root = base / "root"
        homes = {name: root / home.strip("/") for name, (_, home, _) in users.items()}
        homes["anonymous"] = root / ANON_HOME
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)

    def storage_home(name):
        """A users-file home: relative to the local root, or the absolute path in HDFS."""
        return str(homes[name]) if STORAGE == "hdfs" else "/" + str(homes[name].relative_to(root))

    entries = {name: (password, storage_home(name), perms) for name, (password, _, perms) in users.items()}
    entries["anonymous"] = ("", storage_home("anonymous"), "r")
    users_file = write_users_file(base / "users", entries)
    hosts = hosts or ((HOST, HOST6) if v6 else (HOST,))
    port = port or free_port(also_v6=v6)
    storage = SHARED_CLUSTER[0].server_args() if STORAGE == "hdfs" else local_storage_args(root)
    args = [*listen_args(port, hosts), *storage, *users_auth_args(users_file), "--log-level", log_level]
    if use_config_file:
        args = config_file_args(base / "hdfsftpd.conf", args)
    passwords = {name: password for name, (password, _, _) in users.items()}
    passwords["anonymous"] = ANON_PASSWORD
    return Daemon(base, [*args, *extra_args], port=port, hosts=hosts, env=env, users=passwords, homes=homes,
                  root=root, users_file=users_file)


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
    pw = server.password(user)
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


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # On a failure, attach the tail of every running server's log.
    if rep.failed and rep.when in ("setup", "call"):
        for daemon in RUNNING:
            rep.sections.append((f"hdfsftpd log {daemon.log_path}", daemon.log_tail(80)))


@pytest.fixture(scope="session", autouse=True)
def _storage_cluster(request):
    """With HDFSFTPD_TEST_STORAGE=hdfs every server of the session uses the one shared cluster."""
    if STORAGE == "hdfs":
        SHARED_CLUSTER.append(request.getfixturevalue("hdfs_cluster"))


def fill(path, size):
    """A file of SIZE zero bytes: sparse on local disk; written on HDFS, which has no sparse files."""
    if isinstance(path, HdfsPath):
        path.fill(size)
    else:
        with open(path, "wb") as f:
            f.truncate(size)


def local_storage_only(reason):
    """For tests of what only a local disk has (symlinks, sparse files of many GiB): they run with the
    local storage; with HDFSFTPD_TEST_STORAGE=hdfs they are reported as skipped, with the reason."""
    return pytest.mark.skipif(STORAGE == "hdfs", reason=f"local storage only: {reason}")


@pytest.fixture(scope="session", autouse=True)
def _check_prereqs():
    binary()
    for t in ("curl", "lftp", "openssl"):
        require_tool(t)


@pytest.fixture
def make_server(tmp_path_factory):
    """make_server(*extra_args, start=True, **users_server options) -> a users_server Daemon, started
    unless start=False; every one is stopped after the test."""
    made = []

    def make(*extra_args, start=True, **options):
        daemon = users_server(tmp_path_factory.mktemp("srv"), *extra_args, **options)
        made.append(daemon)
        return daemon.start() if start else daemon
    yield make
    for daemon in made:
        daemon.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One default users_server, started, shared by a test module."""
    daemon = users_server(tmp_path_factory.mktemp("srv")).start()
    yield daemon
    daemon.stop()


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
