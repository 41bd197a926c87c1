#!/usr/bin/env python3
"""make soak: hdfsftpd on a real HA HDFS cluster (scripts/cluster/hdfs-cluster.sh --ha: two NameNodes, three
DataNodes) under concurrent clients (Python's ftplib plain and PROT P, curl, lftp) doing a mixed
workload, while faults are injected on a schedule: a DataNode stopped and restarted, a NameNode failover,
safe mode entered and left, a quota hit, a client killed mid-upload, SIGHUP.

Every file a client was told is stored (226) is kept in a shadow model (its content is regenerated from
seeds, never held in memory); every 226 download is compared with it byte for byte, and at the end every
file is read back through a fresh session. A refusal must be a clear 4xx/5xx reply: anything else (a
dropped connection, a timeout) counts as unclear. RSS, threads and file descriptors of the server are
sampled every 10 s. The last line is `soak: N lost, N corrupted, N unclear, N hung`; exit 1 unless all
are 0.

    scripts/test/soak.py --minutes 60            # SOAK_MINUTES in make soak
"""

import argparse
import collections
import ftplib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "cluster"))
from cluster_env import read_env  # noqa: E402  (scripts/cluster/ is not a package)

CLUSTER = REPO / "scripts/cluster/hdfs-cluster.sh"
BIN = Path(os.environ.get("HDFSFTPD_BIN", REPO / "target/release/hdfsftpd"))
USERS = ["soak0", "soak1", "soak2", "soak3"]
KiB, MiB = 1 << 10, 1 << 20
CLEAR = (ftplib.error_temp, ftplib.error_perm, ftplib.error_reply)


def log(message):
    print(f"soak: {message}", flush=True)


def run(*args, timeout=600, check=True):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed: {result.stderr[-2000:]}")
    return result.stdout


def content(segments):
    """The bytes of a file made of (seed, size) segments, in 1 MiB chunks."""
    for seed, size in segments:
        rng = random.Random(seed)
        while size:
            n = min(size, MiB)
            yield rng.randbytes(n)
            size -= n


def digest(segments, skip=0):
    h = hashlib.sha256()
    for chunk in content(segments):
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        h.update(chunk[skip:])
        skip = 0
    return h.hexdigest()


class Source(io.RawIOBase):
    """A file-like reader of segments' bytes, for ftplib's storbinary."""

    def __init__(self, segments):
        self.chunks, self.rest = content(segments), b""

    def readable(self):
        return True

    def read(self, n=-1):
        while len(self.rest) < max(n, 1):
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.rest += chunk
        out, self.rest = (self.rest, b"") if n < 0 else (self.rest[:n], self.rest[n:])
        return out


class Tally:
    """Counts per operation and outcome, bytes, and the problems the soak exists to find."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops = collections.Counter()
        self.bytes = 0
        self.problems = collections.defaultdict(list)

    def op(self, name, outcome, moved=0):
        with self.lock:
            self.ops[(name, outcome)] += 1
            self.bytes += moved

    def problem(self, kind, text):
        with self.lock:
            self.problems[kind].append(text)
        log(f"{kind}: {text}")


class Client(threading.Thread):
    """One concurrent client: its own directory, its own shadow of what is stored there."""

    def __init__(self, number, soak):
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.soak = number, soak
        self.user = USERS[number % len(USERS)]
        self.kind = ["ftplib", "ftplib-tls", "curl", "lftp"][number % 4]
        self.dir = f"c{number}"
        self.files = {}  # name -> [(seed, size), ...]: what a 226 said is stored
        self.uncertain = set()  # names whose last change failed: stored, partly stored or not at all
        self.rng = random.Random(number)
        self.ftp = None
        self.finished = False

    # -- sessions ---------------------------------------------------------------------------------
    def session(self):
        if self.ftp is None:
            self.ftp = self.soak.connect(self.user, tls=self.kind == "ftplib-tls")
            self.ftp.cwd(self.dir)
        return self.ftp

    def drop_session(self):
        if self.ftp is not None:
            try:
                self.ftp.close()
            except OSError:
                pass
        self.ftp = None

    # -- the loop ---------------------------------------------------------------------------------
    def run(self):
        try:
            ftp = self.soak.connect(self.user)
            ftp.mkd(self.dir)
            ftp.quit()
        except CLEAR:
            pass
        operations = [(self.put, 30), (self.get, 25), (self.listing, 10), (self.rename, 5), (self.delete, 5),
                      (self.append, 5), (self.resume, 5), (self.abort, 4), (self.stou, 4), (self.chmod, 4)]
        choices, weights = zip(*operations)
        while not self.soak.stopping.is_set():
            operation = self.rng.choices(choices, weights)[0]
            # Uploads outnumber deletes: past its share of the store a client deletes instead, so the
            # cluster's disks hold a bounded amount (an hour unbounded wrote 64 GB in 15 minutes).
            if self.stored() > self.soak.share:
                operation = self.delete
            name = operation.__name__
            try:
                outcome, moved = operation()
                self.soak.tally.op(name, outcome, moved)
            except CLEAR as e:
                self.soak.tally.op(name, str(e)[:3])
                self.drop_session() if str(e).startswith("421") else None
            except Exception as e:  # noqa: BLE001: a refusal that is not a reply is what the soak looks for
                self.soak.tally.problem("unclear", f"{self.name} {name}: {type(e).__name__}: {e}")
                self.soak.tally.op(name, type(e).__name__)
                self.drop_session()
        self.drop_session()
        self.finished = True

    def stored(self):
        return sum(size for segments in self.files.values() for _, size in segments)

    def pick(self):
        names = sorted(self.files)
        return self.rng.choice(names) if names else None

    def size(self):
        """Log-uniform from 1 KiB to the soak's largest file."""
        return int(KiB * (self.soak.max_size / KiB) ** self.rng.random())

    def new_segments(self):
        return [(self.rng.getrandbits(64), self.size())]

    def mark_uncertain(self, name):
        self.files.pop(name, None)
        self.uncertain.add(name)

    # -- operations: each returns (outcome, bytes moved) and raises for a refusal -----------------
    def put(self):
        name = f"f{self.rng.getrandbits(32):08x}.bin"
        segments = self.new_segments()
        self.mark_uncertain(name)
        if self.kind == "curl":
            self.curl_put(name, segments)
        elif self.kind == "lftp":
            self.lftp_put(name, segments)
        else:
            self.send_data(lambda: self.session().storbinary(f"STOR {name}", Source(segments), blocksize=256 * KiB))
        self.files[name] = segments
        self.uncertain.discard(name)
        return "226", sum(size for _, size in segments)

    def send_data(self, transfer):
        """Runs an upload's data phase. A server that refuses the upload midway (a quota, a storage
        failure) closes the data connection while the client still sends: the reply on the control
        connection then says why, and only a missing or a positive one is unclear."""
        try:
            transfer()
        except (BrokenPipeError, ConnectionResetError) as broken:
            reply = self.session().voidresp()  # raises the 4xx/5xx the server gave
            raise RuntimeError(f"{reply} after the data connection broke ({broken})") from broken

    def local_copy(self, segments):
        path = self.soak.scratch / f"{self.name}.up"
        with open(path, "wb") as out:
            for chunk in content(segments):
                out.write(chunk)
        return path

    def url(self, name):
        return f"ftp://127.0.0.1:{self.soak.port}/{self.dir}/{name}"

    def curl_put(self, name, segments):
        local = self.local_copy(segments)
        result = subprocess.run(["curl", "-sS", "--fail", "-u", f"{self.user}:{self.user}", "-T", str(local),
                                 self.url(name), "-w", "%{response_code}"], capture_output=True, text=True,
                                timeout=900)
        if result.returncode != 0:
            raise ftplib.error_temp(f"{result.stdout[-3:] or '000'} curl: {result.stderr.strip()}") \
                if result.stdout[-3:].startswith(("4", "5")) else RuntimeError(f"curl: {result.stderr.strip()}")

    def lftp_put(self, name, segments):
        local = self.local_copy(segments)
        script = (f"set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 60; "
                  f"set ssl:verify-certificate no; "
                  f"open -u {self.user},{self.user} -p {self.soak.port} 127.0.0.1; "
                  f"put {local} -o {self.dir}/{name}")
        result = subprocess.run(["lftp", "-c", script], capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            # lftp prints the server's reply ("put: Access failed: 451 ...") for a refusal.
            error = result.stderr.strip()
            code = next((word for word in error.split() if len(word) == 3 and word[0] in "45" and word.isdigit()),
                        None)
            raise ftplib.error_temp(f"{code} lftp: {error}") if code else RuntimeError(f"lftp: {error}")

    def get(self):
        name = self.pick()
        if name is None:
            return "empty", 0
        h, size = hashlib.sha256(), 0

        def take(chunk):
            nonlocal size
            h.update(chunk)
            size += len(chunk)
        self.session().retrbinary(f"RETR {name}", take, blocksize=256 * KiB)
        if h.hexdigest() != digest(self.files[name]):
            self.soak.tally.problem("corrupted", f"{self.dir}/{name}: 226 with {size} bytes that differ "
                                                 f"from the {sum(s for _, s in self.files[name])} stored")
        return "226", size

    def resume(self):
        name = self.pick()
        if name is None:
            return "empty", 0
        total = sum(size for _, size in self.files[name])
        offset = self.rng.randrange(total)
        h = hashlib.sha256()
        self.session().retrbinary(f"RETR {name}", h.update, rest=offset)
        if h.hexdigest() != digest(self.files[name], skip=offset):
            self.soak.tally.problem("corrupted", f"{self.dir}/{name} from {offset}: 226 with other bytes")
        return "226", total - offset

    def listing(self):
        listed = set(self.session().nlst())
        missing = set(self.files) - listed
        extra = {n for n in listed - set(self.files) - self.uncertain if not n.startswith(".")}
        if missing:
            self.soak.tally.problem("lost", f"{self.dir}: NLST lacks {sorted(missing)}")
            for name in missing:
                self.mark_uncertain(name)
        if extra:
            self.soak.tally.problem("corrupted", f"{self.dir}: NLST lists unknown {sorted(extra)}")
        return "226", 0

    def rename(self):
        name = self.pick()
        if name is None:
            return "empty", 0
        target = f"r{self.rng.getrandbits(32):08x}.bin"
        segments = self.files[name]
        self.mark_uncertain(name)
        self.mark_uncertain(target)
        self.session().rename(name, target)
        self.uncertain -= {name, target}
        self.files[target] = segments
        return "250", 0

    def delete(self):
        # A name whose last change failed may hold a partial file: those go first, or failed uploads
        # would pile up on the cluster's disks beyond the share.
        if self.uncertain:
            name = min(self.uncertain)
            try:
                reply = self.session().delete(name)[:3]
            except ftplib.error_perm as refused:  # 550: nothing is stored under it
                reply = str(refused)[:3]
            self.uncertain.discard(name)
            return reply, 0
        name = self.pick()
        if name is None:
            return "empty", 0
        self.mark_uncertain(name)
        self.session().delete(name)
        self.uncertain.discard(name)
        return "250", 0

    def append(self):
        name = self.pick()
        if name is None:
            return "empty", 0
        extra = [(self.rng.getrandbits(64), self.rng.randrange(1, 64 * KiB))]
        segments = self.files[name] + extra
        self.mark_uncertain(name)
        self.send_data(lambda: self.session().storbinary(f"APPE {name}", Source(extra)))
        self.files[name] = segments
        self.uncertain.discard(name)
        return "226", extra[0][1]

    def abort(self):
        """Reads a little of a download, then ABOR: the file stays as it was (checked by later gets)."""
        name = self.pick()
        if name is None:
            return "empty", 0
        ftp = self.session()
        connection = ftp.transfercmd(f"RETR {name}")
        connection.recv(8 * KiB)
        try:
            ftp.abort()
        finally:
            connection.close()
        # The 426 of a stopped transfer may still be queued when abort() read ABOR's own reply.
        self.drop_session()
        return "aborted", 0

    def stou(self):
        """STOU: the server chooses the name and says it in the 150 reply (RFC 1123: "FILE: name")."""
        segments = [(self.rng.getrandbits(64), self.rng.randrange(1, 256 * KiB))]
        ftp = self.session()
        ftp.voidcmd("TYPE I")
        host, port = ftp.makepasv()
        connection = socket.create_connection((host, port), timeout=ftp.timeout)
        opening = ftp.sendcmd("STOU")
        name = opening.split("FILE: ", 1)[1].strip()
        self.uncertain.add(name)
        if isinstance(ftp, ftplib.FTP_TLS):
            connection = ftp.context.wrap_socket(connection, server_hostname=ftp.host)
        def send():
            with connection:
                for chunk in content(segments):
                    connection.sendall(chunk)
                if isinstance(connection, ssl.SSLSocket):
                    connection.unwrap()
        self.send_data(send)
        reply = ftp.voidresp()
        self.files[name] = segments
        self.uncertain.discard(name)
        return reply[:3], segments[0][1]

    def chmod(self):
        name = self.pick()
        if name is None:
            return "empty", 0
        mode = self.rng.choice(["600", "640", "644"])
        ftp = self.session()
        ftp.sendcmd(f"SITE CHMOD {mode} {name}")
        facts = ftp.sendcmd(f"MLST {name}").splitlines()[1]
        if f"unix.mode=0{mode}" not in facts:
            self.soak.tally.problem("corrupted", f"{self.dir}/{name}: SITE CHMOD {mode} but MLST says {facts}")
        return "200", 0


class Soak:
    def __init__(self, args):
        self.minutes, self.max_size = args.minutes, args.max_size_mib * MiB
        self.share = args.store_mib * MiB // args.clients
        self.work = Path(tempfile.mkdtemp(prefix="hdfsftpd-soak-"))
        self.scratch = self.work / "scratch"
        self.scratch.mkdir()
        self.cluster_dir = self.work / "cluster"
        self.tally = Tally()
        self.stopping = threading.Event()
        self.faults = collections.Counter()
        self.samples = []
        self.server = None
        self.port = None

    # -- components -------------------------------------------------------------------------------
    def ctl(self, *words, check=True):
        return run(CLUSTER, "ctl", self.cluster_dir, *words, check=check)

    def start(self):
        log(f"work directory {self.work}")
        run(CLUSTER, "start", self.cluster_dir, "--ha", "--owner", os.getpid(), timeout=900)
        env = read_env(self.cluster_dir / "cluster.env")
        users = []
        for user in USERS:
            run(CLUSTER, "add-user", self.cluster_dir, user, user)
            hashed = run("openssl", "passwd", "-6", user).strip()
            users.append(f"{user}:{hashed}::rw")
        (self.work / "users").write_text("\n".join(users) + "\n")
        run(REPO / "scripts/test/make-test-cert.sh", self.work / "tls")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        args = [BIN, "--bind", "127.0.0.1", "--ftp-port", self.port, "--storage", "hdfs",
                "--hdfs-uri", env["HDFS_URI"], "--hadoop-conf-dir", env["HADOOP_CONF_DIR"],
                "--hadoop-classpath", env["HADOOP_CLASSPATH"], "--jvm-opts", env["HDFSFTPD_JVM_OPTS"],
                "--auth", "users", "--users-file", self.work / "users", "--atomic-uploads",
                "--tls-cert", self.work / "tls/cert.pem", "--tls-key", self.work / "tls/key.pem",
                "--max-clients", "40", "--max-per-ip", "0", "--data-timeout", "120",
                "--log-file", self.work / "hdfsftpd.log", "--xferlog", self.work / "xferlog",
                "--pid-file", self.work / "hdfsftpd.pid"]
        self.server = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while "ready:" not in self.log_text():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hdfsftpd did not start:\n{self.log_text()[-3000:]}")
            time.sleep(0.2)
        log(f"hdfsftpd pid {self.server.pid} on port {self.port}, HA cluster {env['HDFS_URI']}")

    def log_text(self):
        path = self.work / "hdfsftpd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connect(self, user, tls=False):
        ftp = ftplib.FTP_TLS(context=ssl._create_unverified_context()) if tls else ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=180)
        ftp.login(user, user)
        if tls:
            ftp.prot_p()
        return ftp

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(timeout=120)
        run(CLUSTER, "stop", self.cluster_dir, check=False, timeout=300)

    # -- faults -----------------------------------------------------------------------------------
    def inject(self, interval):
        """One fault after another, each undone before the next; until the soak stops."""
        faults = [self.datanode_restart, self.failover, self.safe_mode, self.quota, self.killed_client,
                  self.sighup]
        number = 0
        while not self.stopping.wait(interval):
            fault = faults[number % len(faults)]
            number += 1
            try:
                fault()
                self.faults[fault.__name__] += 1
                log(f"fault {fault.__name__} done")
            except Exception as e:  # noqa: BLE001: a fault that could not be injected is reported, not fatal
                self.tally.problem("fault-failed", f"{fault.__name__}: {e}")

    def datanode_restart(self):
        node = random.randrange(3)
        self.ctl("stop-datanode", node)
        time.sleep(5)
        self.ctl("start-datanode", node)

    def failover(self):
        self.ctl("failover")

    def safe_mode(self):
        self.ctl("safemode", "enter")
        time.sleep(3)
        self.ctl("safemode", "leave")

    def quota(self):
        victim = f"/user/{USERS[0]}/c0"
        self.ctl("quota", victim, 64 * KiB, check=False)
        time.sleep(5)
        self.ctl("quota", victim, "clear", check=False)

    def killed_client(self):
        """curl killed mid-upload: with --atomic-uploads the target never appears."""
        local = self.scratch / "killed.up"
        if not local.exists():
            with open(local, "wb") as out:
                out.write(os.urandom(64 * MiB))
        url = f"ftp://127.0.0.1:{self.port}/killed-{self.faults['killed_client']}.bin"
        curl = subprocess.Popen(["curl", "-sS", "--limit-rate", "2M", "-u", f"{USERS[3]}:{USERS[3]}", "-T",
                                 str(local), url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        curl.kill()
        curl.wait()
        time.sleep(2)
        ftp = self.connect(USERS[3])
        try:
            listed = ftp.nlst()
        finally:
            ftp.close()
        if url.rsplit("/", 1)[1] in listed:
            self.tally.problem("corrupted", f"a killed upload was published: {url}")

    def sighup(self):
        self.server.send_signal(signal.SIGHUP)

    # -- the server's resources -------------------------------------------------------------------
    def sample(self):
        while not self.stopping.wait(10):
            status = Path(f"/proc/{self.server.pid}/status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            fds = len(os.listdir(f"/proc/{self.server.pid}/fd"))
            free = shutil.disk_usage(self.work).free >> 20
            self.samples.append((int(fields["VmRSS"].split()[0]) // 1024, int(fields["Threads"]), fds, free))

    # -- the run ----------------------------------------------------------------------------------
    def run(self, clients, fault_interval):
        workers = [Client(number, self) for number in range(clients)]
        helpers = [threading.Thread(target=self.inject, args=(fault_interval,), daemon=True),
                   threading.Thread(target=self.sample, daemon=True)]
        for thread in workers + helpers:
            thread.start()
        time.sleep(self.minutes * 60)
        log("stopping the clients")
        self.stopping.set()
        deadline = time.monotonic() + 600
        for worker in workers:
            worker.join(max(0, deadline - time.monotonic()))
        hung = [w.name for w in workers if not w.finished]
        for name in hung:
            self.tally.problem("hung", f"{name} did not finish its operation within 10 minutes")
        for helper in helpers:
            helper.join(120)
        self.verify(workers)
        self.check_sessions_ended()
        return workers

    def verify(self, workers):
        """Every file a 226 said is stored, read back whole through a fresh session."""
        checked = 0
        for worker in workers:
            ftp = self.connect(worker.user)
            try:
                ftp.cwd(worker.dir)
                for name, segments in sorted(worker.files.items()):
                    h = hashlib.sha256()
                    try:
                        ftp.retrbinary(f"RETR {name}", h.update, blocksize=256 * KiB)
                    except CLEAR as e:
                        self.tally.problem("lost", f"{worker.dir}/{name}: {e}")
                        continue
                    checked += 1
                    if h.hexdigest() != digest(segments):
                        self.tally.problem("corrupted", f"{worker.dir}/{name}: differs from what was stored")
            finally:
                ftp.close()
        log(f"verified {checked} files read back whole")

    def check_sessions_ended(self):
        """No worker hangs: once every client has quit, the daemon lists no session (hdfsftpd --who)."""
        deadline = time.monotonic() + 60
        while True:
            out = run(BIN, "--who", "--json", "--pid-file", self.work / "hdfsftpd.pid")
            sessions = [json.loads(line) for line in out.splitlines()]
            if not sessions:
                return
            if time.monotonic() > deadline:
                self.tally.problem("hung", f"sessions left 60 s after every client quit: {sessions}")
                return
            time.sleep(1)

    def report(self, workers):
        by_op = collections.defaultdict(dict)
        for (name, outcome), count in sorted(self.tally.ops.items()):
            by_op[name][outcome] = count
        for name, outcomes in sorted(by_op.items()):
            log(f"operation {name}: " + ", ".join(f"{outcome} {count}" for outcome, count in outcomes.items()))
        log(f"bytes moved {self.tally.bytes}")
        stored = sum(worker.stored() for worker in workers)
        log(f"stored at the end {stored >> 20} MiB in {sum(len(w.files) for w in workers)} files "
            f"(share {self.share >> 20} MiB a client, {len(workers)} clients)")
        log("faults injected: " + ", ".join(f"{name} {count}" for name, count in sorted(self.faults.items())))
        if self.samples:
            warm = self.samples[min(len(self.samples) - 1, len(self.samples) // 5)]
            log(f"server after warm-up: RSS {warm[0]} MiB, {warm[1]} threads, {warm[2]} fds; at the end: "
                f"RSS {self.samples[-1][0]} MiB, {self.samples[-1][1]} threads, {self.samples[-1][2]} fds; "
                f"peak RSS {max(s[0] for s in self.samples)} MiB ({len(self.samples)} samples); "
                f"least free disk {min(s[3] for s in self.samples)} MiB")
        for kind in ("fault-failed",):
            for text in self.tally.problems.get(kind, []):
                log(f"{kind}: {text}")
        counts = {kind: len(self.tally.problems.get(kind, [])) for kind in ("lost", "corrupted", "unclear", "hung")}
        log(", ".join(f"{count} {kind}" for kind, count in counts.items()))
        return not any(counts.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 60)))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-size-mib", type=int, default=256, help="largest upload (MiB)")
    parser.add_argument("--store-mib", type=int, default=8192,
                        help="most data the clients keep stored at once, before HDFS's replicas (MiB)")
    parser.add_argument("--fault-interval", type=float, default=None, help="seconds between faults")
    args = parser.parse_args()
    interval = args.fault_interval or max(15.0, args.minutes * 60 / 30)
    soak = Soak(args)
    try:
        soak.start()
        workers = soak.run(args.clients, interval)
        ok = soak.report(workers)
    finally:
        soak.stop()
        if not soak.tally.problems:
            shutil.rmtree(soak.work, ignore_errors=True)
        else:
            # The cluster's blocks are gigabytes and tell nothing the logs do not.
            shutil.rmtree(soak.cluster_dir / "data", ignore_errors=True)
            shutil.rmtree(soak.scratch, ignore_errors=True)
            log(f"kept {soak.work} (server log, xferlog, cluster log) for the problems above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
