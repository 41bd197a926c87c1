"""The fuzzers' smoke run (make fuzz runs each target for a minute, docs/fuzzing.md for an hour): every
target in fuzz/ builds, runs 5 seconds from its seed corpus, executes inputs and finds nothing."""

import re

import pytest

from conftest import REPO, run


def fuzz_targets():
    return re.findall(r'^\[\[bin\]\]\nname = "(\w+)"', (REPO / "fuzz/Cargo.toml").read_text(), re.M)


# The nightly build of the targets: 100 to 140 s on 2 cores at load 10 to 50, over 5 minutes at load 44+.
@pytest.mark.timeout(900)
def test_every_fuzz_target_runs_five_seconds_and_finds_nothing():
    targets = fuzz_targets()
    assert len(targets) >= 8, targets
    result = run(["make", "-s", "fuzz", "FUZZ_SECONDS=5"], cwd=REPO, timeout=900)
    out = result.stdout.decode()
    assert result.returncode == 0, out[-6000:] + result.stderr.decode()[-3000:]
    for target in targets:
        line = re.search(rf"^fuzz: {target}: (.*)$", out, re.M)
        assert line, f"{target} did not run:\n{out[-3000:]}"
        executions, edges = re.fullmatch(r"ok, (\d+) executions in \d+ s, cov (\d+) ft \d+", line.group(1)).groups()
        assert int(executions) > 1000 and int(edges) > 50, line.group(0)
    assert out.splitlines()[-1] == f"fuzz: {len(targets)} targets, nothing found", out[-3000:]
