"""A real HDFS for the tests: scripts/cluster/hdfs-cluster.sh (NameNode + 3 DataNodes of Hadoop's MiniDFSCluster in a
JVM of their own, on 127.0.0.1 ephemeral ports) driven through its own verbs, start/add-user/ctl/stop.

`hdfs_cluster` is one cluster shared by the whole pytest session (tests keep to their own users and paths);
`HdfsCluster(dir).start("--ha")` gives a test module a cluster of its own for destructive work (faults).
Every cluster is started `--owner` this pytest process: if the run dies without its teardown (SIGKILL, a
CI timeout, the OOM killer), the cluster's JVM and KDC stop by themselves within seconds.
What HDFS recorded is read through the cluster's own Hadoop API (`ctl stat/ls/get`, as the HDFS
superuser), never through the gateway; the shared cluster also keeps the NameNode's audit log (`audit`).
"""

import itertools
import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "cluster" / "hdfs-cluster.sh"
sys.path.insert(0, str(REPO / "scripts" / "cluster"))
from cluster_env import read_env  # noqa: E402  (scripts/cluster/ is not a package)
START_TIMEOUT = 900


class HdfsCluster:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.env = {}

    @classmethod
    @contextmanager
    def running(cls, tmp_path_factory, name, *flags):
        """A cluster started with FLAGS in a fresh temporary directory NAME, stopped when the block ends,
        whatever ended it (a fixture whose set-up fails after the start leaves no JVM behind)."""
        cluster = cls(tmp_path_factory.mktemp(name)).start(*flags)
        try:
            yield cluster
        finally:
            cluster.stop()

    def _run(self, *args, timeout=600):
        result = subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        return result

    def start(self, *flags, owner=None):
        """Starts the cluster with FLAGS; it stops by itself when process OWNER (this one) ends."""
        owner = os.getpid() if owner is None else owner
        result = self._run("start", str(self.dir), *flags, "--owner", str(owner), timeout=START_TIMEOUT)
        if result.returncode != 0:
            pytest.fail(f"scripts/cluster/hdfs-cluster.sh start {' '.join(flags)} failed:\n{result.stderr[-4000:]}")
        self.env = read_env(self.dir / "cluster.env")
        return self

    def stop(self):
        result = self._run("stop", str(self.dir), timeout=180)
        assert result.returncode == 0, result.stderr
        assert not (self.dir / "cluster.pid").exists()

    def ctl(self, *words, check=True):
        """One control command (scripts/cluster/hdfs-cluster.sh ctl); its answer, or an AssertionError."""
        result = self._run("ctl", str(self.dir), *map(str, words))
        if check and result.returncode != 0:
            raise AssertionError(f"ctl {' '.join(map(str, words))}: {result.stderr.strip()}")
        return result.stdout.strip() if result.returncode == 0 else result.stderr.strip()

    def add_user(self, name, password):
        result = self._run("add-user", str(self.dir), name, password)
        assert result.returncode == 0, result.stderr

    # What HDFS recorded, through Hadoop's API in the cluster's JVM.
    def stat(self, path):
        owner, group, mode, replication, size, mtime_ms, kind = self.ctl("stat", path).split()
        return {"owner": owner, "group": group, "mode": mode, "replication": int(replication), "size": int(size),
                "mtime_ms": int(mtime_ms), "type": kind}

    def exists(self, path):
        return self.ctl("exists", path) == "true"

    def audit(self, *paths):
        """The NameNode's audit log (a cluster started --audit): the metadata calls on PATHS so far, in order,
        as (cmd, src). Each is logged before it returns, so a call a client saw answered is in it."""
        log = self.dir / "audit.log"
        assert log.exists(), f"{log} is missing: the cluster was not started --audit"
        calls = (dict(field.split("=", 1) for field in line.split("\t") if "=" in field)
                 for line in log.read_text().splitlines())
        return [(call["cmd"], call["src"]) for call in calls if call.get("src") in paths]

    def complete_calls(self, path):
        """How many complete() calls the NameNode has had for PATH (a cluster started --audit): the client
        repeats the call, after a back-off, while the file's last block is not yet reported stored."""
        log = self.dir / "complete.log"
        assert log.exists(), f"{log} is missing: the cluster was not started --audit"
        prefix = f"DIR* NameSystem.completeFile: {path} for "
        return sum(line.startswith(prefix) for line in log.read_text().splitlines())

    def ls(self, path):
        return sorted(self.ctl("ls", path).split())

    def read(self, path, scratch):
        local = Path(scratch) / f"get-{next(_scratch_names)}"
        self.ctl("get", path, local)
        data = local.read_bytes()
        local.unlink()
        return data

    def write(self, path, data, scratch, owner=None, mode=None):
        local = Path(scratch) / f"put-{next(_scratch_names)}"
        local.write_bytes(data)
        self.ctl("put", local, path, *([owner] if owner else []), *([mode] if mode else []))
        local.unlink()

    def fs_shell(self, *args):
        """Hadoop's Java CLI (FsShell, what `hdfs dfs` runs) on this cluster, as the HDFS superuser: its output."""
        env = self.env
        command = ["java", *env["HDFSFTPD_JVM_OPTS"].split(), "-cp", f"{env['HADOOP_CONF_DIR']}:{env['HADOOP_CLASSPATH']}",
                   "org.apache.hadoop.fs.FsShell", "-fs", env["HDFS_URI"], *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"FsShell {' '.join(map(str, args))}: {result.stderr[-2000:]}"
        return result.stdout

    def server_args(self):
        """hdfsftpd's storage flags for this cluster, as cluster.env gives them."""
        return ["--storage", "hdfs", "--hdfs-uri", self.env["HDFS_URI"], "--hadoop-conf-dir",
                self.env["HADOOP_CONF_DIR"], "--hadoop-classpath", self.env["HADOOP_CLASSPATH"],
                "--jvm-opts", self.env["HDFSFTPD_JVM_OPTS"]]


class HdfsPath:
    """A path in the cluster with the few pathlib methods the client suite uses on a server's files, so
    the same tests check what HDFS recorded (through `ctl`, as the superuser). Files and directories it
    makes belong to `owner`, the user whose home they are in."""

    def __init__(self, cluster, path, owner, scratch):
        self.cluster, self.path, self.owner, self.scratch = cluster, path.rstrip("/") or "/", owner, scratch

    def __truediv__(self, name):
        return HdfsPath(self.cluster, f"{self.path}/{name}", self.owner, self.scratch)

    def __str__(self):
        return self.path

    def __repr__(self):
        return f"HdfsPath({self.path!r})"

    def __eq__(self, other):
        return isinstance(other, HdfsPath) and other.path == self.path

    def __hash__(self):
        return hash(self.path)

    def owned_by(self, owner):
        return HdfsPath(self.cluster, self.path, owner, self.scratch)

    @property
    def name(self):
        return self.path.rsplit("/", 1)[1]

    @property
    def parent(self):
        return HdfsPath(self.cluster, self.path.rsplit("/", 1)[0] or "/", self.owner, self.scratch)

    def exists(self):
        return self.cluster.exists(self.path)

    def _type(self):
        return self.cluster.stat(self.path)["type"] if self.exists() else None

    def is_dir(self):
        return self._type() == "dir"

    def is_file(self):
        return self._type() == "file"

    def stat(self):
        return HdfsStat(self.cluster.stat(self.path))

    def read_bytes(self):
        return self.cluster.read(self.path, self.scratch)

    def read_text(self):
        return self.read_bytes().decode()

    def write_bytes(self, data):
        self.cluster.write(self.path, data, self.scratch, owner=self.owner, mode="644")
        return len(data)

    def write_text(self, text):
        return self.write_bytes(text.encode())

    def touch(self):
        if not self.exists():
            self.write_bytes(b"")

    def fill(self, size):
        """A file of SIZE zero bytes (HDFS has no sparse files: they are written)."""
        self.cluster.ctl("fill", self.path, size, self.owner)

    def touch_many(self, prefix, count, suffix=""):
        """COUNT empty files PREFIX00000SUFFIX... in this directory, in one command."""
        self.cluster.ctl("touch", self.path, prefix, count, self.owner, suffix)

    def mkdir(self, parents=False, exist_ok=False, mode="755"):
        if self.exists():
            if exist_ok and self.is_dir():
                return
            raise FileExistsError(self.path)
        if not self.parent.exists():
            if not parents:
                raise FileNotFoundError(self.parent.path)
            self.parent.mkdir(parents=True, exist_ok=True, mode=mode)
        self.cluster.ctl("mkdir", self.path, self.owner, mode)

    def unlink(self):
        self.cluster.ctl("rm", self.path)

    def iterdir(self):
        return [self / name for name in self.cluster.ls(self.path)]


class HdfsStat:
    def __init__(self, status):
        kind = stat.S_IFDIR if status["type"] == "dir" else stat.S_IFREG
        self.st_mode = kind | int(status["mode"], 8)
        self.st_size = status["size"]
        self.st_mtime = status["mtime_ms"] / 1000


def listdir(path):
    """os.listdir for local paths and HdfsPaths."""
    if isinstance(path, HdfsPath):
        return [child.name for child in path.iterdir()]
    return os.listdir(path)


_scratch_names = itertools.count()
_user_numbers = itertools.count(1)


def unique_user(prefix="u"):
    """A user name no other test of the session uses (homes on the shared cluster stay apart)."""
    return f"{prefix}{os.getpid()}x{next(_user_numbers)}"


@pytest.fixture(scope="session")
def hdfs_cluster(tmp_path_factory):
    """The session's shared cluster (tests/conftest.py registers this fixture for every module)."""
    with HdfsCluster.running(tmp_path_factory, "hdfs-cluster", "--audit") as cluster:
        yield cluster
