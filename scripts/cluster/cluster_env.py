"""The one reader of scripts/cluster/hdfs-cluster.sh's DIR/cluster.env, for the tests, the bench and the soak."""

import shlex
from pathlib import Path


def read_env(path):
    """cluster.env's KEY=VALUE lines, values unquoted as a shell would."""
    env = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = " ".join(shlex.split(value)) if value.startswith('"') else value
    return env
