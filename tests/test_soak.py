"""The soak's smoke run (make soak runs it for an hour): 3 minutes of 16 clients on a real HA cluster while
every fault is injected at least once, and nothing lost, corrupted, refused without a reply, or hung."""

import re
import sys

from conftest import REPO, run


def test_three_minute_soak_with_faults_loses_nothing():
    result = run([sys.executable, str(REPO / "scripts/test/soak.py"), "--minutes", "3", "--max-size-mib", "8",
                  "--store-mib", "256"], timeout=1500)
    out = result.stdout.decode()
    assert result.returncode == 0, out[-6000:] + result.stderr.decode()[-3000:]
    assert out.splitlines()[-1] == "soak: 0 lost, 0 corrupted, 0 unclear, 0 hung", out[-3000:]
    faults = re.search(r"^soak: faults injected: (.*)$", out, re.M).group(1)
    for fault in ("datanode_restart", "failover", "safe_mode", "quota", "killed_client", "sighup"):
        assert re.search(rf"\b{fault} [1-9]", faults), f"{fault} was not injected: {faults}"
    for operation in ("put", "get", "listing", "rename", "delete", "append", "resume", "abort", "stou", "chmod"):
        assert re.search(rf"^soak: operation {operation}: .*\b(226|250|200|aborted) [1-9]", out, re.M), \
            f"no {operation} succeeded:\n{out[-3000:]}"
    assert re.search(r"^soak: verified [1-9]\d* files read back whole$", out, re.M), out[-3000:]
    # Past its share a client deletes instead of uploading: at most one more file each.
    stored, share, clients = map(int, re.search(r"^soak: stored at the end (\d+) MiB in \d+ files "
                                                r"\(share (\d+) MiB a client, (\d+) clients\)$", out, re.M).groups())
    assert stored <= clients * (share + 8), out[-3000:]
