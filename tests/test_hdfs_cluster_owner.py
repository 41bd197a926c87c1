"""A cluster cannot outlive the test run that started it: `scripts/cluster/hdfs-cluster.sh start --owner PID`
(which tests/hdfs_cluster.py and the bench pass their own pid to) stops the cluster's JVM and its KDC when
PID dies, even by SIGKILL, when no teardown runs. One secure cluster with a single DataNode, the cheapest
start that has both a JVM and a KDC to leave behind."""

import subprocess
from pathlib import Path

from harness import wait_for
from hdfs_cluster import SCRIPT, HdfsCluster


def running(pid):
    """Whether process PID runs. A zombie does not: it holds no memory and waits only for its reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_script(directory):
    return subprocess.run([str(SCRIPT), "stop", str(directory)], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


def test_a_cluster_and_its_kdc_stop_when_their_owner_is_killed(tmp_path):
    # The owner stands in for a pytest run: a process of its own that this test can SIGKILL.
    owner = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)
    cluster = HdfsCluster(tmp_path / "owned-cluster")
    try:
        cluster.start("--secure", "--datanodes", "1", owner=owner.pid)
        jvm = int((cluster.dir / "cluster.pid").read_text())
        kdc = int((cluster.dir / "kdc.pid").read_text())
        assert running(jvm) and running(kdc)
        assert cluster.exists("/tmp"), "the owned cluster serves while its owner lives"

        owner.kill()
        owner.wait()

        wait_for(lambda: not running(jvm), 120, f"the cluster's JVM (pid {jvm}) to exit after its owner's death")
        wait_for(lambda: not running(kdc), 60, f"the KDC (pid {kdc}) to exit after its owner's death")
        log = (cluster.dir / "cluster.log").read_text()
        assert f"owner process {owner.pid} is gone" in log and "hdfs-cluster: stopped" in log, log[-3000:]
        for name in ("cluster.pid", "kdc.pid", "control.port"):
            assert not (cluster.dir / name).exists(), f"{name} outlived the cluster"

        # Nothing is left for `stop` to do, and it says nothing.
        stopped = stop_script(cluster.dir)
        assert (stopped.returncode, stopped.stdout, stopped.stderr) == (0, "", "")
    finally:
        owner.kill()
        owner.wait()
        stop_script(cluster.dir)
