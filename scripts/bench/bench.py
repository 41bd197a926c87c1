#!/usr/bin/env python3
"""hdfsftpd next to vsftpd, pure-ftpd and ProFTPD on this machine: the same work against each,
alternating, medians, and hdfsftpd's ratio against the best of its peers.

A benchmark, not a test: it prints `metric=... hdfsftpd=... vsftpd=... pure-ftpd=... proftpd=...
best_peer=... ratio=...` lines and writes them to target/bench.txt; nothing is asserted. Everything
runs on loopback; all servers serve the same tmpfs directory, are started here with generated settings
on free high ports, and are stopped by pid. vsftpd serves it anonymously with uploads allowed (vsftpd's
local users need system accounts and PAM, which a benchmark must not touch); hdfsftpd, pure-ftpd
(PureDB) and ProFTPD (AuthUserFile) serve it to a virtual user whose password is the same SHA-512 crypt
hash in each. pure-ftpd and ProFTPD are Debian's packages unpacked into a cache, not installed
(scripts/bench/provision-bench-peers.sh). FTPS is explicit (AUTH TLS) for all: pure-ftpd has no implicit FTPS.

  scripts/bench/bench.py [--runs N] [--size-mib N] [--quick] [--only GROUP[,GROUP...]] [--output FILE]

Groups: transfers (1 GiB RETR/STOR, plain and FTPS), small, stages (where a small transfer's time goes), logins, burst, memory
(bursts plain and PROT P from a compiled client: peak RSS, and RSS 10 s later against before; hdfsftpd
alone: 1,000 concurrent 4 MiB downloads, 10,000 idle logged-in sessions), scale, hdfs (libhdfs on
file:///), cluster (a real HDFS from scripts/cluster/hdfs-cluster.sh: hdfsftpd next to Hadoop's Java CLI and a
direct libhdfs copy; then small files and sessions: one session, 16 at once, login to first command, a
session per file, and the server's threads, RSS and descriptors over many sequential sessions; and a
directory of 1,000,000 entries listed by LIST, NLST and MLSD).
"""

import argparse
import ftplib
import io
import os
import pwd
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "cluster"))
from cluster_env import read_env  # noqa: E402  (scripts/cluster/ is not a package)

BIN = REPO / "target/release/hdfsftpd"
HDFS_COPY = REPO / "target/release/examples/hdfs_copy"
# Copies the direct libhdfs copy makes in one JVM, the figures the last one's (see direct_copy).
DIRECT_COPIES = 3
HDFS_CLUSTER = REPO / "scripts/cluster/hdfs-cluster.sh"
FTP_GET = REPO / "target/release/examples/ftp_get"
HOST = "127.0.0.1"
RAW_LOCAL_FS = "fs.file.impl=org.apache.hadoop.fs.RawLocalFileSystem"
RESULTS = []
# The four compared servers run on the first core and the clients (this script and what it starts) on the
# others: on 2 cores, where the scheduler puts a server next to its client otherwise varies from one round
# to the next, and with it the throughput (1130 to 2180 MB/s for the same plain RETR, unpinned).
CPUS = os.sched_getaffinity(0)
SERVER_CPUS = {min(CPUS)} if len(CPUS) > 1 else CPUS
CLIENT_CPUS = CPUS - SERVER_CPUS or CPUS


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} exited with {done.returncode}: {done.stderr.strip()}")
    return done


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cgroup2_mount():
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, kind, *_ = line.split()
        if kind == "cgroup2":
            return Path(mount)
    sys.exit("the CPU figures need a cgroup2 filesystem, and /proc/mounts lists none")


class CpuGroup:
    """A cgroup of its own for one server: its CPU time, forked processes included. vsftpd's session
    processes end unreaped, so their time never reaches the listener's figures in /proc, and polling
    /proc during a transfer took 15% off a 2-core machine's throughput."""

    PREFIX = f"hdfsftpd-bench-{os.getpid()}"

    def __init__(self, name):
        self.path = cgroup2_mount() / f"{self.PREFIX}-{name}"
        try:
            self.path.mkdir()
        except OSError as e:
            sys.exit(f"the CPU figures need a cgroup of each server's own, and {self.path} cannot be made: {e}")

    def enter(self):
        """Moves the calling process into the group (run in the server's process before exec)."""
        (self.path / "cgroup.procs").write_text("0")

    def seconds(self):
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6

    def remove(self):
        """Ends what is left in the group (vsftpd's orphaned session processes), then the group."""
        (self.path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 10
        while (self.path / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            self.path.rmdir()
        except OSError as e:  # the other servers must still be stopped: say so and go on
            print(f"# cgroup {self.path} not removed: {e}", file=sys.stderr)


class Process:
    """A server started by this script in a cgroup of its own, stopped by pid."""

    def __init__(self, name, cmd, port, env=None, cpus=None):
        self.name, self.port = name, port
        # Named per run, so benches side by side keep their own logs; removed once the server stopped well.
        self.log = open(Path(tempfile.gettempdir()) / f"{CpuGroup.PREFIX}-{name}.log", "wb")
        self.group = CpuGroup(name)

        def in_child():
            raise_fd_limit()
            self.group.enter()
            if cpus:
                os.sched_setaffinity(0, cpus)

        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                                     env=env, preexec_fn=in_child)
        self.stopped = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                sys.exit(f"{name} exited at start; see {self.log.name}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit(f"{name} did not listen on {port}")

    def rss_kib(self):
        """Resident memory of the server and its children (vsftpd forks a process per session)."""
        total = 0
        for pid in [self.proc.pid] + children(self.proc.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):  # gone since it was listed
                continue
            # A process that is exiting has no VmRSS line any more.
            total += sum(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
        return total

    def stop(self):
        """Ends the server and its cgroup; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:  # exited just now
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.group.remove()
        self.log.close()
        if self.proc.returncode in (0, -signal.SIGTERM):
            Path(self.log.name).unlink(missing_ok=True)
        else:
            print(f"# {self.name} exited with {self.proc.returncode}; its log: {self.log.name}", file=sys.stderr)


def children(pid):
    """Every descendant of `pid`, from one pass over /proc (sessions come and go quickly)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def settled(pid, limit=3.0):
    """Waits until `pid` has no children left (the session processes of the last transfer)."""
    deadline = time.monotonic() + limit
    while children(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


class CpuMeter:
    """CPU seconds (`seconds`) a server's processes use while the meter runs, from its cgroup."""

    def __init__(self, process):
        self.process, self.seconds = process, 0.0

    def __enter__(self):
        settled(self.process.proc.pid)
        self.start = self.process.group.seconds()
        return self

    def __exit__(self, *exc):
        settled(self.process.proc.pid)
        self.seconds = self.process.group.seconds() - self.start


class PeakRss(threading.Thread):
    """The highest resident memory of a server's process tree while in a `with` block, polled every
    20 ms."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.peak, self.running = server, 0, True

    def run(self):
        while self.running:
            self.sample()
            time.sleep(0.02)

    def sample(self):
        self.peak = max(self.peak, self.server.rss_kib())

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.join()
        self.sample()


# ------------------------------------------------------------------------------------------------
# the two servers
# ------------------------------------------------------------------------------------------------

class Target:
    """How to reach one server: its port, credentials and directory names."""

    def __init__(self, name, port, user, password, upload_dir, process):
        self.name, self.port = name, port
        self.user, self.password, self.upload_dir = user, password, upload_dir
        self.process = process

    def curl(self, path):
        """curl's URL and credentials for `path`."""
        return ["-u", f"{self.user}:{self.password}", f"ftp://{HOST}:{self.port}/{path}"]

    def ftp(self):
        ftp = ftplib.FTP(timeout=60)
        ftp.connect(HOST, self.port)
        ftp.login(self.user, self.password)
        return ftp


def start_vsftpd(work, cert, key):
    common = f"""listen=YES
listen_address={HOST}
anonymous_enable=YES
anon_root={work}/pub
no_anon_password=YES
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_umask=022
local_enable=NO
seccomp_sandbox=NO
background=NO
use_sendfile=YES
max_clients=5000
max_per_ip=5000
secure_chroot_dir={work}/empty
xferlog_enable=NO
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
rsa_cert_file={cert}
rsa_private_key_file={key}
require_ssl_reuse=NO
"""
    port = free_port()
    conf = work / "vsftpd.conf"
    # No passive range: thousands of small transfers would exhaust one in TIME_WAIT.
    conf.write_text(common + f"listen_port={port}\n")
    vsftpd = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    process = Process("vsftpd", [vsftpd, str(conf)], port, cpus=SERVER_CPUS)
    return Target("vsftpd", port, "anonymous", "bench@", "up", process)


def password_hash():
    """The virtual user's password as SHA-512 crypt, the same in every server that checks one."""
    return run(["openssl", "passwd", "-6", "bench"]).stdout.strip()


def start_hdfsftpd(work, cert, key, *extra, name="hdfsftpd", max_clients=256, home="/pub", cpus=SERVER_CPUS):
    port = free_port()
    users = work / f"users-{name}"
    users.write_text(f"bench:{password_hash()}:{home}:rw\n")
    # Every client comes from 127.0.0.1: no per-address cap, as vsftpd's max_per_ip above.
    cmd = [str(BIN), "--bind", HOST, "--ftp-port", str(port), "--ftps-port", "0",
           "--tls-cert", str(cert), "--tls-key", str(key), "--local-root", str(work), "--users-file", str(users),
           "--max-clients", str(max_clients), "--max-per-ip", "0", "--log-level", "warn", *extra]
    return Target(name, port, "bench", "bench", "up", Process(name, cmd, port, cpus=cpus))


def start_pureftpd(work, cert, key, peers):
    """pure-ftpd with a PureDB virtual user mapped to the ftp account, chrooted to pub (the /./)."""
    ftp = pwd.getpwnam("ftp")
    passwd, pdb = work / "pure-ftpd.passwd", work / "pure-ftpd.pdb"
    passwd.write_text(f"bench:{password_hash()}:{ftp.pw_uid}:{ftp.pw_gid}::{work}/pub/./::::::::::::\n")
    run([str(peers / "usr/bin/pure-pw"), "mkdb", str(pdb), "-f", str(passwd)])
    port = free_port()
    cmd = [str(peers / "usr/sbin/pure-ftpd"), "-S", f"{HOST},{port}", "-l", f"puredb:{pdb}", "-E", "-H",
           "-Y", "1", "-2", f"{cert},{key}", "-c", "5000", "-C", "5000", "-u", "1"]
    return Target("pure-ftpd", port, "bench", "bench", "up", Process("pure-ftpd", cmd, port, cpus=SERVER_CPUS))


def start_proftpd(work, cert, key, peers):
    """ProFTPD with mod_auth_file's virtual user (the ftp account's ids), chrooted to its home; no
    login delay (mod_delay's, which would cap it at a few logins a second)."""
    ftp = pwd.getpwnam("ftp")
    passwd, group = work / "proftpd.passwd", work / "proftpd.group"
    passwd.write_text(f"bench:{password_hash()}:{ftp.pw_uid}:{ftp.pw_gid}::{work}/pub:/bin/false\n")
    group.write_text(f"ftp:x:{ftp.pw_gid}:\n")
    for path in (passwd, group):
        path.chmod(0o600)  # mod_auth_file refuses world-readable files
    port = free_port()
    conf = work / "proftpd.conf"
    conf.write_text(f"""ServerType standalone
ServerName "bench"
Port {port}
DefaultAddress {HOST}
SocketBindTight on
UseIPv6 off
User nobody
Group nogroup
PidFile {work}/proftpd.pid
ScoreboardFile {work}/proftpd.scoreboard
DelayEngine off
DelayTable none
WtmpLog off
TransferLog none
UseReverseDNS off
MaxInstances 5000
AuthOrder mod_auth_file.c
AuthUserFile {passwd}
AuthGroupFile {group}
RequireValidShell off
DefaultRoot ~
UseSendfile on
Umask 022
ModulePath {peers}/usr/lib/proftpd
LoadModule mod_tls.c
TLSEngine on
TLSRequired off
TLSRSACertificateFile {cert}
TLSRSACertificateKeyFile {key}
TLSOptions NoSessionReuseRequired
TLSProtocol TLSv1.2 TLSv1.3
TLSVerifyClient off
<Directory />
  AllowOverwrite on
</Directory>
""")
    cmd = [str(peers / "usr/sbin/proftpd"), "-n", "-q", "-c", str(conf)]
    return Target("proftpd", port, "bench", "bench", "up", Process("proftpd", cmd, port, cpus=SERVER_CPUS))


# ------------------------------------------------------------------------------------------------
# workloads: each returns one number, higher is better unless noted
# ------------------------------------------------------------------------------------------------

# curl's flags per mode; FTPS is explicit (AUTH TLS) for every server.
CURL_TLS = {
    "plain": [],
    "ftps-prot-p": ["-k", "--ssl-reqd"],
    # TLS for the login only (PROT C): curl's --ftp-ssl-control without --ssl-reqd.
    "ftps-prot-c": ["-k", "--ftp-ssl-control"],
}


def metered(target, size, transfer):
    """Runs `transfer()` (which returns MB/s); returns (MB/s, server CPU seconds per GiB moved)."""
    with CpuMeter(target.process) as meter:
        rate = transfer()
    return rate, meter.seconds / (size / (1 << 30))


def retr_mb_s(target, mode, name):
    out = run(["curl", "-sS", "--fail", *CURL_TLS[mode], "-o", "/dev/null", "-w", "%{speed_download}",
               *target.curl(name)]).stdout
    return float(out) / 1e6


def client_retr_mb_s(target, scheme, name, sink=None):
    """A download by scripts/bench/ftp_get.rs (`ftp`, or `ftpes`: explicit FTPS with PROT P), where curl,
    not the server, would set the pace: over TLS (it decrypts slowly) and into a file (it writes 16 KiB
    at a time)."""
    out = run([str(FTP_GET), scheme, HOST, str(target.port), target.user, target.password, name,
               *([str(sink)] if sink else [])])
    got, seconds = out.stdout.split()
    return int(got) / float(seconds) / 1e6


def stor_mb_s(target, mode, local, remote):
    out = run(["curl", "-sS", "--fail", *CURL_TLS[mode], "-T", str(local), "-w", "%{speed_upload}",
               *target.curl(f"{target.upload_dir}/{remote}")]).stdout
    return float(out) / 1e6


def small_files_per_s(target, count=500, size=4096):
    payload = os.urandom(size)
    ftp = target.ftp()
    ftp.voidcmd("TYPE I")
    started = time.monotonic()
    for i in range(count):
        ftp.storbinary(f"STOR {target.upload_dir}/{target.name}-small-{i}.bin", io.BytesIO(payload))
    for i in range(count):
        ftp.retrbinary(f"RETR {target.upload_dir}/{target.name}-small-{i}.bin", lambda data: None)
    elapsed = time.monotonic() - started
    ftp.quit()
    return 2 * count / elapsed


STAGES = ["pasv", "retr_150", "retr_data", "retr_226", "stor_150", "stor_226"]


def small_file_stages(target, count=300, size=4096):
    """Where a small-file transfer's time goes, seen from the client on one raw control connection:
    microseconds from sending PASV to its 227 (listener set-up); from sending RETR/STOR to the 150
    (accept, open, reply); from the 150 to the download's end of data (open file to close); and from
    the end of data to the 226 (close, log, reply). Medians over `count` uploads, then downloads."""
    payload = os.urandom(size)
    ftp = target.ftp()
    ftp.voidcmd("TYPE I")
    ticks = {stage: [] for stage in STAGES}

    def timed(stage, step):
        started = time.perf_counter_ns()
        result = step()
        ticks[stage].append((time.perf_counter_ns() - started) / 1000)
        return result

    def passive():
        host, port = ftplib.parse227(timed("pasv", lambda: ftp.sendcmd("PASV")))
        return socket.create_connection((host, port))

    def expect(code, reply):
        if not reply.startswith(code):
            raise ftplib.error_reply(reply)

    names = [f"{target.upload_dir}/{target.name}-stage-{i}.bin" for i in range(count)]
    for name in names:
        with passive() as data:
            timed("stor_150", lambda: expect("150", ftp.sendcmd(f"STOR {name}")))
            data.sendall(payload)
        timed("stor_226", lambda: expect("226", ftp.getresp()))
    for name in names:
        with passive() as data:
            timed("retr_150", lambda: expect("150", ftp.sendcmd(f"RETR {name}")))
            got = timed("retr_data", lambda: b"".join(iter(lambda: data.recv(65536), b"")))
        if len(got) != size:
            raise RuntimeError(f"{target.name}: RETR {name} gave {len(got)} bytes, not {size}")
        timed("retr_226", lambda: expect("226", ftp.getresp()))
    ftp.quit()
    return tuple(statistics.median(ticks[stage]) for stage in STAGES)


def small_files_each_way(target, count, size=4096):
    """One session: `count` files of `size` up, then down; (uploads/s, downloads/s)."""
    payload = os.urandom(size)
    names = [f"{target.upload_dir}/{target.name}-each-{i}.bin" for i in range(count)]
    ftp = target.ftp()
    ftp.voidcmd("TYPE I")
    started = time.monotonic()
    for name in names:
        ftp.storbinary(f"STOR {name}", io.BytesIO(payload))
    uploaded = time.monotonic()
    for name in names:
        ftp.retrbinary(f"RETR {name}", lambda data: None)
    downloaded = time.monotonic()
    ftp.quit()
    return count / (uploaded - started), count / (downloaded - uploaded)


def concurrent_uploads_per_s(target, sessions, count, size=4096):
    """`sessions` sessions at once, each logging in and uploading `count` files: files/s in all."""
    payload = os.urandom(size)
    failures = []
    gate = threading.Barrier(sessions + 1)

    def client(number):
        try:
            ftp = target.ftp()
            ftp.voidcmd("TYPE I")
            gate.wait(timeout=120)
            for i in range(count):
                ftp.storbinary(f"STOR {target.upload_dir}/{target.name}-s{number}-{i}.bin", io.BytesIO(payload))
            ftp.quit()
        except Exception as e:  # every failure counts, whatever its kind
            failures.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    gate.wait(timeout=120)
    started = time.monotonic()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if failures:
        raise RuntimeError(f"{target.name}: {len(failures)} of {sessions} sessions failed: {failures[0]}")
    return sessions * count / elapsed


def first_command_ms(target, count, name):
    """Median milliseconds from connecting to the answer of the first command that asks the storage
    (SIZE `name`), logged in; `count` sessions one after the other."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        ftp = target.ftp()
        ftp.sendcmd(f"SIZE {name}")
        times.append((time.perf_counter() - started) * 1000)
        ftp.quit()
    return statistics.median(times)


def sessions_per_file_per_s(target, count, size=4096):
    """A session per file, as curl uploads: log in, STOR `size` bytes, QUIT; sessions/s."""
    payload = os.urandom(size)
    started = time.monotonic()
    for i in range(count):
        ftp = target.ftp()
        ftp.storbinary(f"STOR {target.upload_dir}/{target.name}-session-{i}.bin", io.BytesIO(payload))
        ftp.quit()
    return count / (time.monotonic() - started)


def resources(process):
    """(threads, RSS MiB, open file descriptors) of a server process."""
    status = Path(f"/proc/{process.proc.pid}/status").read_text().splitlines()
    field = lambda key: int(next(line.split()[1] for line in status if line.startswith(key)))  # noqa: E731
    return field("Threads:"), round(field("VmRSS:") / 1024), len(os.listdir(f"/proc/{process.proc.pid}/fd"))
def listing_seconds(target, command, path):
    """(seconds to the first line, seconds to the 226, lines) of one listing, timed from the command."""
    ftp = target.ftp()
    ftp.sock.settimeout(600)
    with ftp.transfercmd(f"{command} {path}") as data:
        started = time.monotonic()
        first, lines = None, 0
        while chunk := data.recv(1 << 20):
            first = time.monotonic() - started if first is None else first
            lines += chunk.count(b"\r\n")
    ftp.voidresp()
    total = time.monotonic() - started
    ftp.quit()
    return first, total, lines


def logins_per_s(target, count=200):
    started = time.monotonic()
    for _ in range(count):
        target.ftp().quit()
    return count / (time.monotonic() - started)


def run_concurrently(client, count):
    """`count` threads running `client`, all started before any is waited for."""
    threads = [threading.Thread(target=client) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# Seconds a burst client waits to connect and for each reply before its operation counts as failed.
CLIENT_PATIENCE = 60


def burst(target, clients=200):
    """Clients at once, each logging in, listing and fetching 1 MiB: (failed operations, peak RSS MiB)."""
    failures = []
    gate = threading.Barrier(clients)

    def client():
        try:
            gate.wait(timeout=CLIENT_PATIENCE)
            ftp = ftplib.FTP(timeout=CLIENT_PATIENCE)
            ftp.connect(HOST, target.port)
            ftp.login(target.user, target.password)
            ftp.nlst()
            got = bytearray()
            ftp.retrbinary("RETR 1m.bin", got.extend, blocksize=1 << 20)
            assert len(got) == 1 << 20
            ftp.quit()
        except Exception as e:  # every failure counts, whatever its kind
            failures.append(repr(e))

    with PeakRss(target.process) as rss:
        run_concurrently(client, clients)
    return len(failures), rss.peak / 1024


def clients_at_once(target, count, scheme, path, listing):
    """`count` clients of scripts/bench/ftp_get.rs at once (`ftp`, or `ftpes`: PROT P), each logging in,
    listing (with `listing`), fetching `path` and quitting, all released at once: (failures, wall s,
    p50 s, p99 s per client from its connect to QUIT's reply, p50 s, p99 s of when each got that reply
    counted from the release, peak RSS MiB)."""
    cmd = [str(FTP_GET), "--clients", str(count), *(["--list"] if listing else []), scheme, HOST, str(target.port),
           target.user, target.password, path]
    with PeakRss(target.process) as rss:
        out = run(cmd).stdout
    figures = dict(field.split("=") for field in out.split())
    times = (float(figures[k]) for k in ("wall", "p50", "p99", "done_p50", "done_p99"))
    return int(figures["failures"]), *times, rss.peak / 1024


# How long after a burst the server's memory is looked at again.
SETTLE_SECONDS = 10


def memory_burst(target, scheme, clients=200):
    """A burst of `clients` (login, NLST, RETR 1 MiB), then RSS `SETTLE_SECONDS` later against RSS
    before it: (failures, wall s, peak RSS MiB, RSS after / RSS before)."""
    before = target.process.rss_kib()
    failures, wall, *_, peak = clients_at_once(target, clients, scheme, "1m.bin", listing=True)
    time.sleep(SETTLE_SECONDS)
    return failures, wall, peak, target.process.rss_kib() / before


def held_sessions(target, count):
    """`count` sessions logged in one after the other and held (scripts/bench/ftp_get.rs --hold), RSS then, and
    NOOP on each: (failures, RSS MiB, RSS MiB before)."""
    before = target.process.rss_kib() / 1024
    holder = subprocess.Popen([str(FTP_GET), "--hold", str(count), "ftp", HOST, str(target.port), target.user,
                               target.password], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()  # held=N failures=F: all are logged in or refused
        rss = target.process.rss_kib() / 1024
        alive = dict(field.split("=") for field in holder.communicate("\n", timeout=600)[0].split())
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    return count - int(alive.get("alive", 0)), rss, before


def idle_and_busy(target, idle=1000, busy=100):
    """`idle` logged-in sessions held open while `busy` others transfer 1 MiB each: (failures, RSS MiB)."""
    failures, held = [], []
    for _ in range(idle):
        try:
            held.append(target.ftp())
        except Exception as e:
            failures.append(repr(e))

    def transfer():
        try:
            ftp = target.ftp()
            ftp.retrbinary("RETR 1m.bin", lambda data: None, blocksize=1 << 20)
            ftp.quit()
        except Exception as e:
            failures.append(repr(e))

    with PeakRss(target.process) as rss:
        run_concurrently(transfer, busy)
        for ftp in held:
            try:
                ftp.voidcmd("NOOP")
            except Exception as e:
                failures.append(repr(e))
    for ftp in held:
        ftp.close()
    return len(failures), rss.peak / 1024


# ------------------------------------------------------------------------------------------------
# reporting
# ------------------------------------------------------------------------------------------------

def report(metric, figures, unit, lower_is_better=False):
    """One metric line: every server's figure (`figures`: name -> value, hdfsftpd first), the best
    peer, and hdfsftpd's figure divided by that peer's."""
    ours = figures["hdfsftpd"]
    peers = {name: value for name, value in figures.items() if name != "hdfsftpd"}
    best = (min if lower_is_better else max)(peers, key=peers.get)
    if peers[best]:
        ratio = f"{ours / peers[best]:.2f}"
    else:
        ratio = "1.00" if ours == peers[best] else "inf"
    shown = " ".join(f"{name}={value:.2f}" if abs(value) < 10 else f"{name}={value:.1f}"
                     for name, value in figures.items())
    line = f"metric={metric} {shown} best_peer={best} ratio={ratio} unit={unit}"
    print(line, flush=True)
    RESULTS.append(line)


def report_alone(metric, figures, unit):
    """A metric line of figures without a peer to compare with (name -> value; counts stay whole)."""
    shown = " ".join(f"{name}={value}" if isinstance(value, int) else
                     f"{name}={value:.2f}" if abs(value) < 10 else f"{name}={value:.1f}"
                     for name, value in figures.items())
    line = f"metric={metric} {shown} unit={unit}"
    print(line, flush=True)
    RESULTS.append(line)


def alternate(runs, measures, warm_up=True):
    """Runs each of `measures` (name -> function returning a figure, or a tuple of figures) `runs`
    rounds, the order rotating every round; the medians, by name (a tuple of medians for tuples). With
    `warm_up`, one unrecorded round first: the first large write on a fresh machine pays for the
    kernel's first touch of its memory, whichever side does it."""
    if warm_up:
        for measure in measures.values():
            measure()
    names = list(measures)
    samples = {name: [] for name in names}
    for round_ in range(runs):
        first = round_ % len(names)
        for name in names[first:] + names[:first]:
            samples[name].append(measures[name]())
    print_samples(samples)
    return {name: medians(samples[name]) for name in names}


def each(targets, measure):
    """`measure(target)` for every target, as `alternate`'s measures."""
    return {t.name: (lambda t=t: measure(t)) for t in targets}


def medians(values):
    if isinstance(values[0], tuple):
        return tuple(statistics.median(column) for column in zip(*values))
    return statistics.median(values)


def print_samples(samples):
    """Every round's figure, so the spread behind a median can be seen."""
    for name, values in samples.items():
        shown = [v if isinstance(v, tuple) else (v,) for v in values]
        print(f"#   {name}: {' '.join('/'.join(f'{x:.2f}' if x < 10 else f'{x:.0f}' for x in v) for v in shown)}",
              flush=True)


def provision_peers():
    """The unpacked root of pure-ftpd and ProFTPD (scripts/bench/provision-bench-peers.sh)."""
    return Path(run([str(REPO / "scripts/bench/provision-bench-peers.sh")]).stdout.strip().splitlines()[-1])


def versions(peers):
    lines = [
        run([str(BIN), "--version"]).stdout.strip(),
        run(["dpkg-query", "-W", "-f", "vsftpd ${Version}", "vsftpd"]).stdout.strip(),
        *(peers / "versions.txt").read_text().splitlines(),
        run(["curl", "--version"]).stdout.splitlines()[0],
        run(["openssl", "version"]).stdout.strip(),
        f"python {sys.version.split()[0]}",
        f"{os.cpu_count()} cores, {os.uname().release}",
    ]
    for line in lines:
        print(f"# {line}")
    return lines


GROUPS = ["transfers", "small", "stages", "logins", "burst", "memory", "scale", "hdfs", "cluster"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="small sizes and counts, one run: a smoke test of the bench")
    parser.add_argument("--sessions", type=int, default=10_000,
                        help="sequential sessions of the cluster group's threads/RSS/descriptors line [10000; quick: 100]")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups to run [all]")
    parser.add_argument("--output", type=Path, default=REPO / "target/bench.txt",
                        help="where the results go as well [target/bench.txt]")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only - set(GROUPS):
        parser.error(f"unknown group(s) {', '.join(sorted(only - set(GROUPS)))}; known: {', '.join(GROUPS)}")
    if args.quick:
        args.runs, args.size_mib, args.sessions = 1, 64, 100
        # A peer that drops burst connections (vsftpd's listen backlog) fails them in 10 s, not 60.
        global CLIENT_PATIENCE
        CLIENT_PATIENCE = 10
        os.environ["FTP_GET_PATIENCE"] = str(CLIENT_PATIENCE)
    raise_fd_limit()
    peers = provision_peers()
    tool_versions = versions(peers)
    work = Path(tempfile.mkdtemp(prefix="hdfsftpd-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    print(f"# work directory {work}, cgroups {CpuGroup.PREFIX}-*", flush=True)
    print(f"# compared servers on CPU {sorted(SERVER_CPUS)}, their clients on CPU {sorted(CLIENT_CPUS)}", flush=True)
    os.chmod(work, 0o755)
    servers = []
    try:
        (work / "pub" / "up").mkdir(parents=True)
        (work / "empty").mkdir()
        os.chmod(work / "pub", 0o555)  # vsftpd refuses a writable anonymous root
        shutil.chown(work / "pub" / "up", "ftp")
        os.chmod(work / "pub" / "up", 0o777)
        big = work / "pub" / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        (work / "pub" / "1m.bin").write_bytes(os.urandom(1 << 20))
        (work / "pub" / "4m.bin").write_bytes(os.urandom(4 << 20))
        run([str(REPO / "scripts/test/make-test-cert.sh"), str(work / "tls")])
        cert, key = work / "tls/cert.pem", work / "tls/key.pem"
        targets = []
        for start in (start_hdfsftpd, start_vsftpd):
            targets.append(start(work, cert, key))
            servers.append(targets[-1].process)
        for start in (start_pureftpd, start_proftpd):
            targets.append(start(work, cert, key, peers))
            servers.append(targets[-1].process)
        size = f"{args.size_mib}MiB"
        os.sched_setaffinity(0, CLIENT_CPUS)

        if "transfers" in only:
            gib = args.size_mib << 20
            for mode in ["plain", "ftps-prot-p", "ftps-prot-c"]:
                if mode == "ftps-prot-p":
                    fetch = lambda t, name: client_retr_mb_s(t, "ftpes", name)
                else:
                    fetch = lambda t, name: retr_mb_s(t, mode, name)
                retr = lambda t: metered(t, gib, lambda: fetch(t, "big.bin"))
                stor = lambda t: metered(t, gib, lambda: stor_mb_s(t, mode, big, f"{t.name}-{mode}.bin"))
                for verb, measure in [("retr", retr), ("stor", stor)]:
                    figures = alternate(args.runs, each(targets, measure))
                    report(f"{verb}_{size}_{mode}", {n: f[0] for n, f in figures.items()}, "MB/s")
                    report(f"{verb}_{size}_{mode}_server_cpu", {n: f[1] for n, f in figures.items()},
                           "CPU s/GiB (lower is better)", lower_is_better=True)
        # Fewer in the quick mode: ProFTPD's daemon takes 200 ms per new session.
        small, logins = (100, 40) if args.quick else (500, 200)
        if "small" in only:
            small_files = lambda t: small_files_per_s(t, count=small)
            report("small_files_4KiB_up_and_down", alternate(args.runs, each(targets, small_files)), "files/s")
        if "stages" in only:
            stage_figures = alternate(args.runs, each(targets, lambda t: small_file_stages(t, count=small)))
            for i, stage in enumerate(STAGES):
                report(f"small_file_stage_{stage}", {n: f[i] for n, f in stage_figures.items()},
                       "microseconds (lower is better)", lower_is_better=True)
        if "logins" in only:
            sequential = lambda t: logins_per_s(t, count=logins)
            report("sequential_login_quit", alternate(args.runs, each(targets, sequential)), "sessions/s")
        if "burst" in only:
            bursts = {t.name: burst(t) for t in targets}
            report("burst_200_clients_failed_ops", {n: b[0] for n, b in bursts.items()},
                   "failures (lower is better)", lower_is_better=True)
            report("burst_200_clients_peak_rss", {n: b[1] for n, b in bursts.items()},
                   "MiB (lower is better)", lower_is_better=True)
        if "memory" in only:
            memory_bench(targets)
        # The groups below compare hdfsftpd with itself or with HDFS clients: no pinning.
        os.sched_setaffinity(0, CPUS)
        if "memory" in only:
            memory_alone_bench(work, cert, key, args.quick, servers)
        if "scale" in only:
            scale = start_hdfsftpd(work, cert, key, name="hdfsftpd-1200", max_clients=1200, cpus=None)
            servers.append(scale.process)
            idle = 100 if args.quick else 1000
            failed, rss = idle_and_busy(scale, idle=idle)
            line = f"metric=scale_{idle}_idle_100_busy hdfsftpd_failures={failed} hdfsftpd_rss_mib={rss:.0f}"
            print(line, flush=True)
            RESULTS.append(line)
            scale.process.stop()
        if "hdfs" in only:
            hdfs_bench(work, big, size, args.runs, cert, key, servers)
        if "cluster" in only:
            cluster_bench(work, big, size, args.runs, args.quick, args.sessions, cert, key, servers)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    out = args.output
    out.write_text("\n".join([f"# {time.strftime('%Y-%m-%d')}"] + [f"# {v}" for v in tool_versions] + RESULTS) + "\n")
    print(f"# results written to {out}")


def memory_bench(targets):
    """Each server's memory through a burst of 200 clients, plain then PROT P, from the compiled client."""
    for mode, scheme in [("plain", "ftp"), ("ftps-prot-p", "ftpes")]:
        bursts = {t.name: memory_burst(t, scheme) for t in targets}
        for i, (figure, unit) in enumerate([("failed_ops", "failures"), ("wall", "s"), ("peak_rss", "MiB"),
                                            (f"rss_{SETTLE_SECONDS}s_after_vs_before", "ratio")]):
            report(f"memory_burst_200_{mode}_{figure}", {n: b[i] for n, b in bursts.items()},
                   f"{unit} (lower is better)", lower_is_better=True)


def memory_alone_bench(work, cert, key, quick, servers):
    """hdfsftpd alone: many concurrent 4 MiB downloads from the compiled client (peak RSS, failures,
    per-client p50 and p99 from connect to QUIT's reply), then many idle logged-in sessions (RSS)."""
    downloads, idle = (100, 200) if quick else (1000, 10000)
    # Each row on a server sized for it: the worker pool is --max-clients threads from the start.
    server = start_hdfsftpd(work, cert, key, name="hdfsftpd-downloads", max_clients=downloads + 100, cpus=None)
    servers.append(server.process)
    failures, wall, p50, p99, done_p50, done_p99, peak = clients_at_once(server, downloads, "ftp", "4m.bin",
                                                                         listing=False)
    server.process.stop()
    line = (f"metric=memory_{downloads}_downloads_4MiB hdfsftpd_failures={failures} hdfsftpd_peak_rss_mib={peak:.1f} "
            f"p50_s={p50:.3f} p99_s={p99:.3f} p99_over_p50={p99 / p50:.2f} done_p50_s={done_p50:.3f} "
            f"done_p99_s={done_p99:.3f} done_p99_over_p50={done_p99 / done_p50:.2f} wall_s={wall:.2f}")
    print(line, flush=True)
    RESULTS.append(line)
    # Sessions stay idle while the others log in (10,000 logins take minutes on a loaded machine).
    server = start_hdfsftpd(work, cert, key, "--idle-timeout", "3600", name="hdfsftpd-idle",
                            max_clients=idle + 100, cpus=None)
    servers.append(server.process)
    failures, rss, before = held_sessions(server, idle)
    line = (f"metric=memory_{idle}_idle_sessions hdfsftpd_failures={failures} hdfsftpd_rss_mib={rss:.1f} "
            f"hdfsftpd_rss_mib_before={before:.1f}")
    print(line, flush=True)
    RESULTS.append(line)
    server.process.stop()


def hdfs_bench(work, big, size, runs, cert, key, servers):
    """RETR/STOR through hdfsftpd with --storage hdfs next to a direct libhdfs copy of the same file."""
    jars = run([str(REPO / "scripts/cluster/provision-hadoop.sh")]).stdout.strip().splitlines()[-1]
    env = dict(os.environ, CLASSPATH=f"{jars}/*", LIBHDFS_OPTS="-Xrs -Xmx1g", HDFS_CONF=RAW_LOCAL_FS)
    # On file:/// the user's home is the bench tree's absolute path.
    hdfs = start_hdfsftpd(work, cert, key, "--storage", "hdfs", "--hdfs-uri", "file:///", "--hdfs-conf", RAW_LOCAL_FS,
                          "--hadoop-classpath", f"{jars}/*", name="hdfsftpd-hdfs", home=f"{work}/pub", cpus=None)
    servers.append(hdfs.process)

    moved = big.stat().st_size
    # Both sides of each comparison read from and write to the same kinds of files (tmpfs), in rounds
    # as for the server comparisons.
    median = alternate(runs, {
        "ftp_get": lambda: metered(hdfs, moved, lambda: client_retr_mb_s(hdfs, "ftp", "big.bin", sink=work / "ftp-get.bin")),
        "direct_get": lambda: direct_copy("get", big, work / "direct-get.bin", env),
        "ftp_put": lambda: metered(hdfs, moved, lambda: stor_mb_s(hdfs, "plain", big, "hdfs-put.bin")),
        "direct_put": lambda: direct_copy("put", big, work / "pub/up/direct-put.bin", env),
    })
    report_against_direct("hdfs", size, median)


def direct_copy(direction, source, target, env):
    """(MB/s, CPU s/GiB) of the direct libhdfs copy (hdfs_copy): its last of DIRECT_COPIES copies in one
    JVM, so that its JIT is as warm as a running gateway's; its CPU is the whole process's (the JVM's
    threads included) during that copy."""
    out = run([str(HDFS_COPY), direction, str(source), str(target), str(DIRECT_COPIES)], env=env).stdout.split()
    moved, seconds, cpu = int(out[0]), float(out[3]), float(out[6])
    return moved / seconds / 1e6, cpu / (moved / (1 << 30))


def report_against_direct(group, size, median):
    """The gateway's RETR and STOR next to the direct copy: speeds, then server CPU per GiB (`median`:
    ftp_get, direct_get, ftp_put, direct_put -> (MB/s, CPU s/GiB); a java_cli figure where there is one)."""
    for verb, side in [("retr", "get"), ("stor", "put")]:
        speeds = {"hdfsftpd": median[f"ftp_{side}"][0]}
        if f"cli_{side}" in median:
            speeds["java_cli"] = median[f"cli_{side}"]
        speeds["direct_libhdfs"] = median[f"direct_{side}"][0]
        report(f"{group}_{verb}_{size}", speeds, "MB/s")
        report(f"{group}_{verb}_{size}_cpu", {"hdfsftpd": median[f"ftp_{side}"][1], "direct_libhdfs": median[f"direct_{side}"][1]},
               "CPU s/GiB (lower is better)", lower_is_better=True)


def cluster_bench(work, big, size, runs, quick, sessions, cert, key, servers):
    """The same file through hdfsftpd on a real HDFS (scripts/cluster/hdfs-cluster.sh: a NameNode and 3 DataNodes
    on this machine, 2 replicas), next to Hadoop's Java CLI (FsShell -get/-put, one JVM per command as
    `hdfs dfs` runs, its start-up included) and the direct libhdfs copy (hdfs_copy, in the same JVM set-up
    as the gateway's, its start-up excluded, its JIT warmed up: see direct_copy), with the server CPU per
    GiB of the gateway and of the direct copy. All three act as the same HDFS user. The cluster's blocks
    go to disk (a real cluster's do; tmpfs would not hold the replicas of every round's files). The quick
    mode skips the unrecorded first round and moves 20 small files instead of 200: each FsShell command
    starts a JVM, which takes seconds."""
    small_count = 20 if quick else 200
    cluster_dir = Path(tempfile.mkdtemp(prefix="hdfsftpd-bench-cluster-"))
    print(f"# cluster directory {cluster_dir}", flush=True)
    gateway = None
    try:
        # Owned by this process: a bench killed before its `finally` leaves no cluster behind.
        run([str(HDFS_CLUSTER), "start", str(cluster_dir), "--owner", str(os.getpid())])
        env = read_env(cluster_dir / "cluster.env")
        run([str(HDFS_CLUSTER), "add-user", str(cluster_dir), "bench", "bench"])
        run([str(HDFS_CLUSTER), "ctl", str(cluster_dir), "mkdir", "/user/bench/up", "bench"])
        run([str(HDFS_CLUSTER), "ctl", str(cluster_dir), "mkdir", "/user/bench/cli-small", "bench"])
        uri, conf, jars, jvm_opts = env["HDFS_URI"], env["HADOOP_CONF_DIR"], env["HADOOP_CLASSPATH"], env["HDFSFTPD_JVM_OPTS"]
        gateway = start_hdfsftpd(work, cert, key, "--storage", "hdfs", "--hdfs-uri", uri, "--hadoop-conf-dir", conf,
                                 "--hadoop-classpath", jars, "--jvm-opts", jvm_opts, name="hdfsftpd-cluster", home="", cpus=None)
        servers.append(gateway.process)
        client_env = dict(os.environ, HADOOP_USER_NAME="bench", CLASSPATH=f"{conf}:{jars}", HDFS_URI=uri,
                          LIBHDFS_OPTS=jvm_opts, HDFS_CONF="")

        def java_cli(*args):
            """FsShell's wall-clock seconds, JVM start included."""
            started = time.monotonic()
            run(["java", *jvm_opts.split(), "-cp", f"{conf}:{jars}", "org.apache.hadoop.fs.FsShell", "-fs", uri, *args],
                env=client_env)
            return time.monotonic() - started

        run([str(HDFS_COPY), "put", str(big), "/user/bench/big.bin"], env=client_env)
        gib = big.stat().st_size
        median = alternate(runs, {
            "ftp_get": lambda: metered(gateway, gib, lambda: client_retr_mb_s(gateway, "ftp", "big.bin",
                                                                              sink=work / "cluster-ftp-get.bin")),
            "cli_get": lambda: gib / java_cli("-get", "-f", "/user/bench/big.bin", str(work / "cluster-cli-get.bin")) / 1e6,
            "direct_get": lambda: direct_copy("get", "/user/bench/big.bin", work / "cluster-direct-get.bin", client_env),
            "ftp_put": lambda: metered(gateway, gib, lambda: stor_mb_s(gateway, "plain", big, "ftp-put.bin")),
            "cli_put": lambda: gib / java_cli("-put", "-f", str(big), "/user/bench/up/cli-put.bin") / 1e6,
            "direct_put": lambda: direct_copy("put", big, "/user/bench/up/direct-put.bin", client_env),
        }, warm_up=not quick)
        report_against_direct("cluster", size, median)
        print(f"# java CLI start-up (FsShell -test -d /): {java_cli('-test', '-d', '/'):.2f} s", flush=True)

        # Small files: COUNT up then down, one FTP session, next to one FsShell -put and one -get of them all.
        local_small, fetched = work / "cluster-small", work / "cluster-small-got"
        local_small.mkdir()
        fetched.mkdir()
        for i in range(small_count):
            (local_small / f"cli-small-{i}.bin").write_bytes(os.urandom(4096))
        files = sorted(str(p) for p in local_small.iterdir())

        def cli_small():
            seconds = java_cli("-put", "-f", *files, "/user/bench/cli-small")
            seconds += java_cli("-get", "-f", "/user/bench/cli-small/*", str(fetched))
            return 2 * small_count / seconds

        small = alternate(runs, {"hdfsftpd": lambda: small_files_per_s(gateway, count=small_count),
                                 "java_cli": cli_small}, warm_up=not quick)
        report(f"cluster_small_files_{small_count}_4KiB_up_and_down", small, "files/s")
        sessions_bench(gateway, runs, quick, sessions)

        # A directory of ENTRIES entries, listed once by each of LIST, NLST and MLSD (each listing takes
        # seconds): the first line's and the whole listing's time, and the gateway's RSS growth meanwhile.
        entries = 100_000 if quick else 1_000_000
        run([str(HDFS_CLUSTER), "ctl", str(cluster_dir), "entries", "/user/bench/entries", str(entries)])
        rss_before, timings = gateway.process.rss_kib(), {}
        with PeakRss(gateway.process) as peak:
            for command in ("LIST", "NLST", "MLSD"):
                first, total, lines = listing_seconds(gateway, command, "entries")
                assert lines == entries, f"{command} listed {lines} of {entries} entries"
                timings[command.lower()] = (first, total)
        figures = " ".join(f"hdfsftpd_{c}_first_line_s={first:.2f} hdfsftpd_{c}_s={total:.1f}"
                           for c, (first, total) in timings.items())
        line = (f"metric=cluster_list_{entries}_entries {figures} "
                f"hdfsftpd_rss_growth_mib={(peak.peak - rss_before) / 1024:.0f}")
        print(line, flush=True)
        RESULTS.append(line)
    finally:
        if gateway:
            gateway.process.stop()
        # The script stops the cluster by its pid; a failure here must not hide the bench's own.
        subprocess.run([str(HDFS_CLUSTER), "stop", str(cluster_dir)], capture_output=True, timeout=300)
        shutil.rmtree(cluster_dir, ignore_errors=True)


def sessions_bench(gateway, runs, quick, sequential):
    """Small files and sessions on the cluster (issue 20's targets): one session's 4 KiB uploads and
    downloads, 16 sessions uploading at once (the ratio is against one session), connect + login + the
    first command that asks HDFS (SIZE), a session per file, and the server's threads, RSS and file
    descriptors before and after `sequential` sessions one after the other (the first rounds warm it up)."""
    count, logins = (20, 20) if quick else (200, 100)
    figures = alternate(runs, {
        "one_session": lambda: small_files_each_way(gateway, count),
        "sixteen": lambda: concurrent_uploads_per_s(gateway, 16, max(count // 16, 2)),
        "first_command": lambda: first_command_ms(gateway, logins, f"{gateway.upload_dir}/{gateway.name}-each-0.bin"),
        "session_per_file": lambda: sessions_per_file_per_s(gateway, logins),
    }, warm_up=not quick)
    up, down = figures["one_session"]
    report_alone("cluster_one_session_4KiB", {"hdfsftpd_uploads": up, "hdfsftpd_downloads": down}, "files/s")
    report("cluster_16_sessions_4KiB_uploads", {"hdfsftpd": figures["sixteen"], "one_session": up}, "files/s")
    report_alone("cluster_connect_login_first_command", {"hdfsftpd": figures["first_command"]},
                 "ms median (lower is better)")
    report_alone("cluster_session_per_file_4KiB", {"hdfsftpd": figures["session_per_file"]}, "sessions/s")
    before = resources(gateway.process)
    rate = sessions_per_file_per_s(gateway, sequential)
    after = resources(gateway.process)
    report_alone(f"cluster_{sequential}_sequential_sessions", {
        "sessions_per_s": rate, "threads_before": before[0], "threads_after": after[0],
        "rss_mib_before": before[1], "rss_mib_after": after[1], "fds_before": before[2], "fds_after": after[2]},
        "count")


if __name__ == "__main__":
    main()
