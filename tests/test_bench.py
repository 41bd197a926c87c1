"""`make bench`'s script end to end in its quick mode: it starts hdfsftpd, vsftpd, pure-ftpd and ProFTPD
itself, and a real HDFS (scripts/cluster/hdfs-cluster.sh) for the cluster rows, runs the same work against each,
prints a metric line for every measurement with every server's figure and hdfsftpd's ratio against the
best peer, and leaves no process, cgroup or file behind. No speed or size is asserted (the bench prints, the
README records); failed operations are, since a burst, concurrent downloads or held sessions must cost
hdfsftpd none."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, require_tool
from hdfs_fixtures import hadoop_jars  # noqa: F401  (the bench provisions the same jars)

SIZE = "64MiB"
TRANSFERS = [f"{verb}_{SIZE}_{mode}{cpu}" for mode in ("plain", "ftps-prot-p", "ftps-prot-c")
             for verb in ("retr", "stor") for cpu in ("", "_server_cpu")]
# Where a small transfer's time goes, per stage, seen from the client (scripts/bench/bench.py small_file_stages).
STAGES = [f"small_file_stage_{stage}" for stage in ("pasv", "retr_150", "retr_data", "retr_226", "stor_150", "stor_226")]
COMPARED = TRANSFERS + ["small_files_4KiB_up_and_down"] + STAGES + [
    "sequential_login_quit", "burst_200_clients_failed_ops", "burst_200_clients_peak_rss"]
# A burst from the compiled client against every server: its failures, wall time, peak RSS, and RSS 10 s later
# against RSS before.
MEMORY = [f"memory_burst_200_{mode}_{figure}" for mode in ("plain", "ftps-prot-p")
          for figure in ("failed_ops", "wall", "peak_rss", "rss_10s_after_vs_before")]
# hdfsftpd alone, at the quick mode's counts.
MEMORY_ALONE = ["memory_100_downloads_4MiB", "memory_200_idle_sessions"]
# Each speed next to the server CPU per GiB of the gateway and of the direct copy.
HDFS = [f"hdfs_{verb}_{SIZE}{cpu}" for verb in ("retr", "stor") for cpu in ("", "_cpu")]
# On a real cluster (scripts/cluster/hdfs-cluster.sh), next to Hadoop's Java CLI and the direct libhdfs copy.
CLUSTER = [f"cluster_{verb}_{SIZE}{cpu}" for verb in ("retr", "stor") for cpu in ("", "_cpu")]
CLUSTER_SMALL = "cluster_small_files_20_4KiB_up_and_down"
# Small files and sessions on the cluster (scripts/bench/bench.py sessions_bench), with their figures' names.
CLUSTER_SESSIONS = {
    "cluster_one_session_4KiB": ("hdfsftpd_uploads", "hdfsftpd_downloads"),
    "cluster_16_sessions_4KiB_uploads": ("hdfsftpd", "one_session"),
    "cluster_connect_login_first_command": ("hdfsftpd",),
    "cluster_session_per_file_4KiB": ("hdfsftpd",),
    "cluster_100_sequential_sessions": ("sessions_per_s", "threads_before", "threads_after", "rss_mib_before",
                                        "rss_mib_after", "fds_before", "fds_after"),
}
CLUSTER_LIST = "cluster_list_100000_entries"


def cgroup2_entries(prefix):
    mount = next(line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                 if line.split()[2] == "cgroup2")
    return {entry for entry in os.listdir(mount) if entry.startswith(prefix)}


def processes_naming(text):
    """Processes whose command line names `text` (the bench's servers name its work directory)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            continue
    return found


@pytest.mark.timeout(1800)  # four servers (ProFTPD: 200 ms per new session), an HDFS cluster; the bench: 1500 s
def test_quick_bench_reports_every_metric_and_leaves_nothing_behind(hadoop_jars, tmp_path):  # noqa: F811
    require_tool("vsftpd")
    output = tmp_path / "bench.txt"
    done = subprocess.run([sys.executable, "scripts/bench/bench.py", "--quick", "--output", str(output)], cwd=REPO,
                          capture_output=True, text=True, timeout=1500, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]

    lines = {re.match(r"metric=(\S+)", line).group(1): line for line in done.stdout.splitlines()
             if line.startswith("metric=")}
    assert list(lines) == (COMPARED + MEMORY + MEMORY_ALONE + ["scale_100_idle_100_busy"] + HDFS + CLUSTER
                           + [CLUSTER_SMALL] + list(CLUSTER_SESSIONS) + [CLUSTER_LIST]), done.stdout
    for name in COMPARED + MEMORY:
        figures = r" hdfsftpd=[\d.]+ vsftpd=[\d.]+ pure-ftpd=[\d.]+ proftpd=[\d.]+"
        best = r" best_peer=(vsftpd|pure-ftpd|proftpd) ratio=([\d.]+|inf) unit="
        assert re.search(figures + best, lines[name]), lines[name]
    cpu = r" hdfsftpd=[\d.]+ direct_libhdfs=[\d.]+ best_peer=direct_libhdfs ratio=[\d.]+ unit=CPU s/GiB \(lower is better\)$"
    for name in HDFS + CLUSTER:
        if name.endswith("_cpu"):
            assert re.search(cpu, lines[name]), lines[name]
        elif name in HDFS:
            assert re.search(r" hdfsftpd=[\d.]+ direct_libhdfs=[\d.]+ best_peer=direct_libhdfs ratio=[\d.]+ unit=MB/s",
                             lines[name]), lines[name]
        else:
            assert re.search(r" hdfsftpd=[\d.]+ java_cli=[\d.]+ direct_libhdfs=[\d.]+ best_peer=(java_cli|direct_libhdfs) "
                             r"ratio=[\d.]+ unit=MB/s", lines[name]), lines[name]
    assert re.search(r" hdfsftpd=[\d.]+ java_cli=[\d.]+ best_peer=java_cli ratio=[\d.]+ unit=files/s",
                     lines[CLUSTER_SMALL]), done.stdout
    for name, figures in CLUSTER_SESSIONS.items():
        assert re.search("".join(rf" {figure}=[\d.]+" for figure in figures), lines[name]), lines[name]
    assert " best_peer=one_session ratio=" in lines["cluster_16_sessions_4KiB_uploads"]
    listings = "".join(rf" hdfsftpd_{c}_first_line_s=[\d.]+ hdfsftpd_{c}_s=[\d.]+" for c in ("list", "nlst", "mlsd"))
    assert re.search(listings + r" hdfsftpd_rss_growth_mib=-?\d+$", lines[CLUSTER_LIST]), lines[CLUSTER_LIST]
    assert re.search(r"^# java CLI start-up \(FsShell -test -d /\): [\d.]+ s$", done.stdout, re.M), done.stdout
    assert " hdfsftpd=0.00 " in lines["burst_200_clients_failed_ops"], lines["burst_200_clients_failed_ops"]
    assert "hdfsftpd_failures=0 " in lines["scale_100_idle_100_busy"], lines["scale_100_idle_100_busy"]
    for mode in ("plain", "ftps-prot-p"):
        failed = lines[f"memory_burst_200_{mode}_failed_ops"]
        assert " hdfsftpd=0.00 " in failed, failed
    downloads, idle = (lines[name] for name in MEMORY_ALONE)
    assert re.search(r" hdfsftpd_failures=0 hdfsftpd_peak_rss_mib=[\d.]+ p50_s=[\d.]+ p99_s=[\d.]+ p99_over_p50=[\d.]+ "
                     r"done_p50_s=[\d.]+ done_p99_s=[\d.]+ done_p99_over_p50=[\d.]+ wall_s=[\d.]+$", downloads), downloads
    assert re.search(r" hdfsftpd_failures=0 hdfsftpd_rss_mib=[\d.]+ hdfsftpd_rss_mib_before=[\d.]+$", idle), idle
    # Servers and clients on cores of their own, where there is more than one.
    cpus = sorted(os.sched_getaffinity(0))
    pinned = ([cpus[0]], cpus[1:]) if len(cpus) > 1 else (cpus, cpus)
    assert f"# compared servers on CPU {pinned[0]}, their clients on CPU {pinned[1]}\n" in done.stdout, done.stdout
    for server in ("vsftpd", "pure-ftpd", "proftpd-core"):
        assert re.search(rf"^# {server} \d", done.stdout, re.M), done.stdout

    recorded = output.read_text()
    assert all(line in recorded for line in lines.values()), recorded
    # Only what this bench made: other benches may run on the same machine.
    work, cgroups = re.search(r"^# work directory (\S+), cgroups (\S+)-\*$", done.stdout, re.M).groups()
    assert not cgroup2_entries(cgroups + "-"), "the bench left cgroups behind"
    assert not processes_naming(work), "the bench left servers running"
    assert not Path(work).exists(), "the bench left its work directory (on /dev/shm)"
    logs = list(Path(tempfile.gettempdir()).glob(f"{cgroups}-*.log"))
    assert not logs, f"the bench left the logs of servers that stopped well: {logs}"
    cluster = re.search(r"^# cluster directory (\S+)$", done.stdout, re.M).group(1)
    assert not processes_naming(cluster), "the bench left its HDFS cluster running"
    assert not Path(cluster).exists(), "the bench left its cluster's directory"
