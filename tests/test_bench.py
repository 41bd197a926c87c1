"""`make bench`'s script end to end in its quick mode: it starts vsftpd and hdfsftpd itself, and a real HDFS
(scripts/hdfs-cluster.sh) for the cluster rows, runs the same work against both, prints a metric line for
every measurement, and leaves no process, cgroup or file behind. No speed is asserted (the bench prints,
the README records); failed operations are, since a burst or 100 held sessions must cost hdfsftpd none."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import require_tool
from hdfs_fixtures import hadoop_jars  # noqa: F401  (the bench provisions the same jars)

REPO = Path(__file__).resolve().parent.parent
SIZE = "64MiB"
TRANSFERS = [f"{verb}_{SIZE}_{mode}{cpu}" for mode in ("plain", "ftps-prot-p", "ftps-prot-c")
             for verb in ("retr", "stor") for cpu in ("", "_server_cpu")]
COMPARED = TRANSFERS + ["small_files_4KiB_up_and_down", "sequential_login_quit", "burst_200_clients_failed_ops",
                        "burst_200_clients_peak_rss"]
HDFS = [f"hdfs_retr_{SIZE}", f"hdfs_stor_{SIZE}"]
# On a real cluster (scripts/hdfs-cluster.sh), next to Hadoop's Java CLI and the direct libhdfs copy.
CLUSTER = [f"cluster_{verb}_{SIZE}_vs_{other}" for verb in ("retr", "stor") for other in ("java_cli", "direct_libhdfs")]
CLUSTER_SMALL = "cluster_small_files_20_4KiB_up_and_down"


def cgroup2_entries():
    mount = next(line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                 if line.split()[2] == "cgroup2")
    return {entry for entry in os.listdir(mount) if entry.startswith("hdfsftpd-bench-")}


def bench_processes():
    """Servers the bench started (their command lines name its work directory)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"hdfsftpd-bench-" in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


def test_quick_bench_reports_every_metric_and_leaves_nothing_behind(hadoop_jars, tmp_path):  # noqa: F811
    require_tool("vsftpd")
    shm_before = set(os.listdir("/dev/shm"))
    clusters_before = set(Path(tempfile.gettempdir()).glob("hdfsftpd-bench-cluster-*"))
    output = tmp_path / "bench.txt"
    done = subprocess.run([sys.executable, "scripts/bench.py", "--quick", "--output", str(output)], cwd=REPO,
                          capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    lines = {re.match(r"metric=(\S+)", line).group(1): line for line in done.stdout.splitlines()
             if line.startswith("metric=")}
    assert list(lines) == COMPARED + ["scale_100_idle_100_busy"] + HDFS + CLUSTER + [CLUSTER_SMALL], done.stdout
    for name in COMPARED:
        assert re.search(r" hdfsftpd=[\d.]+ vsftpd=[\d.]+ ratio=([\d.]+|inf) unit=", lines[name]), lines[name]
    for name in HDFS:
        assert re.search(r" hdfsftpd=[\d.]+ direct_libhdfs=[\d.]+ ratio=[\d.]+ unit=MB/s", lines[name]), lines[name]
    for name in CLUSTER:
        other = name.rsplit("_vs_", 1)[1]
        assert re.search(rf" hdfsftpd=[\d.]+ {other}=[\d.]+ ratio=[\d.]+ unit=MB/s", lines[name]), lines[name]
    assert re.search(r" hdfsftpd=[\d.]+ java_cli=[\d.]+ ratio=[\d.]+ unit=files/s", lines[CLUSTER_SMALL]), done.stdout
    assert re.search(r"^# java CLI start-up \(FsShell -test -d /\): [\d.]+ s$", done.stdout, re.M), done.stdout
    assert " hdfsftpd=0.00 " in lines["burst_200_clients_failed_ops"], lines["burst_200_clients_failed_ops"]
    assert "hdfsftpd_failures=0 " in lines["scale_100_idle_100_busy"], lines["scale_100_idle_100_busy"]
    assert re.search(r"^# vsftpd \d", done.stdout, re.M), done.stdout

    recorded = output.read_text()
    assert all(line in recorded for line in lines.values()), recorded
    assert not cgroup2_entries(), "the bench left cgroups behind"
    assert not bench_processes(), "the bench left servers running"
    assert set(os.listdir("/dev/shm")) <= shm_before, "the bench left files in /dev/shm"
    assert set(Path(tempfile.gettempdir()).glob("hdfsftpd-bench-cluster-*")) <= clusters_before, \
        "the bench left its cluster's directory"
