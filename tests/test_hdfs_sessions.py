"""Sessions on a real HDFS (tests/hdfs_cluster.py): the sessions of one user share one HDFS connection,
sessions of different users never do, and a shared connection is closed once unused for --hdfs-idle-close.
What HDFS recorded (owners) is read through the cluster's own Hadoop API, not through the gateway; the
server's threads are read from /proc."""

import ftplib
import io
import os
import time

import pytest

from hdfs_fixtures import (  # noqa: F401  (fixtures are found by name)
    hadoop_jars,
    hdfs_server,
    start_hdfs_server,
)

SMALL = os.urandom(4096)


def threads_of(server):
    status = (open(f"/proc/{server.proc.pid}/status").read()).splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("Threads:")))


def session_per_file(server, name, user=None):
    """What curl does for a file: log in, STOR 4 KiB, QUIT."""
    with server.ftp(user) as ftp:
        assert ftp.storbinary(f"STOR {name}", io.BytesIO(SMALL)).startswith("226")


def test_sequential_sessions_of_one_user_leave_the_threads_flat(hdfs_server):
    """A connection per session left a lease renewer and an RPC connection thread behind for each (for
    60 s and 10 s): 60 sessions grew the server by about 60 threads."""
    for i in range(10):
        session_per_file(hdfs_server, f"warm-{i}")
    before = threads_of(hdfs_server)
    for i in range(60):
        session_per_file(hdfs_server, f"file-{i}")
    after = threads_of(hdfs_server)
    assert after - before <= 5, (before, after)
    assert hdfs_server.log_text().count(f"connected as {hdfs_server.user},") == 1
    assert hdfs_server.read("file-59") == SMALL


def test_interleaved_sessions_of_two_users_act_each_as_its_own_user(hdfs_server):
    """ann and bob log in turn and at once: HDFS records each one's files as theirs. eve (home /user) is
    refused ann's 0700 home while ann's sessions are open: nothing of ann's reaches eve's sessions."""
    ann, bob, eve = hdfs_server.user, hdfs_server.other, hdfs_server.browser
    for i in range(3):
        session_per_file(hdfs_server, f"ann-{i}", ann)
        session_per_file(hdfs_server, f"bob-{i}", bob)
    with hdfs_server.ftp(ann) as ann_ftp, hdfs_server.ftp(bob) as bob_ftp, hdfs_server.ftp(eve) as eve_ftp:
        for i in range(3):
            assert ann_ftp.storbinary(f"STOR ann-open-{i}", io.BytesIO(SMALL)).startswith("226")
            assert bob_ftp.storbinary(f"STOR bob-open-{i}", io.BytesIO(SMALL)).startswith("226")
            with pytest.raises(ftplib.error_perm) as refused:
                eve_ftp.storbinary(f"STOR {ann}/eve-{i}", io.BytesIO(SMALL))
            assert str(refused.value).startswith("550") and "ermission denied" in str(refused.value)
    owners = {name: hdfs_server.stat(name, user=ann)["owner"] for name in hdfs_server.ls(ann)}
    owners |= {name: hdfs_server.stat(name, user=bob)["owner"] for name in hdfs_server.ls(bob)}
    assert owners == {**{f"ann-{i}": ann for i in range(3)}, **{f"ann-open-{i}": ann for i in range(3)},
                      **{f"bob-{i}": bob for i in range(3)}, **{f"bob-open-{i}": bob for i in range(3)}}
    log = hdfs_server.log_text()
    assert (log.count(f"connected as {ann},"), log.count(f"connected as {bob},")) == (1, 1)


def test_a_session_goes_on_when_another_of_its_user_ends(hdfs_server):
    with hdfs_server.ftp() as first:
        first.voidcmd("TYPE I")
        session_per_file(hdfs_server, "from-second")
        assert first.storbinary("STOR from-first", io.BytesIO(SMALL)).startswith("226")
        got = io.BytesIO()
        first.retrbinary("RETR from-second", got.write)
        assert got.getvalue() == SMALL
    assert hdfs_server.read("from-first") == SMALL


def test_the_shared_connection_is_closed_once_unused_for_the_idle_time(start_hdfs_server):
    server = start_hdfs_server("--hdfs-idle-close", "3")
    closed = f"closed the connection of {server.user}, unused for 3s"
    session_per_file(server, "before")
    quit_at = time.monotonic()
    server.wait_for_log(closed, timeout=60)
    assert time.monotonic() - quit_at >= 3
    # The next session connects afresh.
    session_per_file(server, "after")
    assert server.log_text().count(f"connected as {server.user},") == 2
    assert server.read("after") == SMALL
