"""Faults on a real HDFS, and nothing lost silently (issue #12, item 6).

Every failure must end in either a complete file with 226, or a 4xx/5xx reply plus an xferlog line that
says the transfer did not complete; never a 226 for a short file, never a hung worker. The faults are
real: DataNodes and NameNodes of the module's own clusters (scripts/cluster/hdfs-cluster.sh, destructive work
stays off the session's shared cluster) are stopped, restarted, put in safe mode, failed over, and space
and name quotas are set, through the fixture's `ctl` verbs.

- `fault_cluster`: a NameNode and 3 DataNodes, 2 replicas per block. `fault_server` on it uses 256 KiB
  blocks, so a few MiB make a file of many blocks and a write pipeline that moves from DataNode to
  DataNode; its log carries the Hadoop client's warnings, where a read that left a dead DataNode shows.
- `ha_cluster`: an HA pair; the gateway is given the nameservice URI (hdfs://hdfsftpd-ns), no host.

What HDFS recorded is read through the cluster's own Hadoop API (`ctl get/stat`), not the gateway.
"""

import io
import os
import re
from collections import Counter

import pytest

from harness import (Daemon, free_port, listen_args, open_transfer, users_auth_args, wait_for,
                     write_users_file)
from hdfs_cluster import HdfsCluster, unique_user

PASSWORD = "secret"
BLOCK = 256 * 1024
# The Hadoop client inside the gateway logs its warnings (a DataNode given up on, a pipeline recovered).
CLIENT_WARNINGS = "-Dorg.apache.logging.log4j.level=WARN"
MAX_CLIENTS = 4
# Waits for the cluster, not speed limits: a loaded 2-core machine is slow to move blocks.
SETTLE_TIMEOUT = 120


class FaultServer(Daemon):
    """hdfsftpd on `cluster` with one user of its own (home /user/NAME), BLOCK-sized blocks and an xferlog;
    every client comes from 127.0.0.1, so no cap per address."""

    def __init__(self, cluster, workdir):
        self.cluster = cluster
        self.user = unique_user("flt")
        cluster.add_user(self.user, PASSWORD)
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        users_file = write_users_file(workdir / "users", {self.user: (PASSWORD, "", "rw")})
        storage = cluster.server_args()
        storage[storage.index("--jvm-opts") + 1] += f" {CLIENT_WARNINGS}"
        self.xferlog = workdir / "xferlog"
        args = [*listen_args(port), *users_auth_args(users_file), *storage, "--xferlog", self.xferlog,
                "--max-clients", MAX_CLIENTS, "--max-per-ip", "0", "--login-fail-delay", "0",
                "--hdfs-conf", f"dfs.blocksize={BLOCK}"]
        super().__init__(workdir, args, port=port, users={self.user: PASSWORD}, client_timeout=120)

    def hdfs_path(self, name):
        return f"/user/{self.user}/{name}"

    def recorded(self, name):
        """The file's bytes as HDFS has them."""
        return self.cluster.read(self.hdfs_path(name), self.workdir)

    def transfers(self, name):
        """xferlog records of /NAME: (direction i/o, bytes, completion c/i), oldest first."""
        records = []
        for line in self.xferlog.read_text().splitlines() if self.xferlog.exists() else []:
            fields = line.split()
            # ctime (5 fields), seconds, host, bytes, name, type, action, direction, mode, user, ...
            if fields[8] == f"/{name}":
                records.append((fields[11], int(fields[7]), fields[-1]))
        return records

    def session(self):
        client = self.ftp()
        client.voidcmd("TYPE I")
        return client

    @classmethod
    def serving(cls, cluster, tmp_path_factory, name):
        """For a fixture to yield from: a started server in a fresh directory NAME, which must exit 0."""
        server = cls(cluster, tmp_path_factory.mktemp(name)).start()
        yield server
        assert server.stop() == 0, server.log_tail()


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory):
    with HdfsCluster.running(tmp_path_factory, "fault-cluster") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def fault_server(fault_cluster, tmp_path_factory):
    yield from FaultServer.serving(fault_cluster, tmp_path_factory, "fault-server")


@pytest.fixture(scope="module")
def ha_cluster(tmp_path_factory):
    with HdfsCluster.running(tmp_path_factory, "ha-cluster", "--ha") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def ha_server(ha_cluster, tmp_path_factory):
    yield from FaultServer.serving(ha_cluster, tmp_path_factory, "ha-server")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def read_all(data):
    received = bytearray()
    while chunk := data.recv(1 << 20):
        received += chunk
    data.close()
    return bytes(received)


def final_reply(client):
    """The reply that ends a transfer, whatever its code (ftplib raises on 4xx/5xx)."""
    try:
        return client.getresp()
    except Exception as error:  # ftplib.error_temp / error_perm carry the reply text
        return str(error)


def final_reply_of(client, command):
    """COMMAND's reply, whatever its code."""
    try:
        return client.sendcmd(command)
    except Exception as error:
        return str(error)


def blocks(cluster, path):
    """Per block of PATH, the DataNodes holding it (the block being written included)."""
    return [holders.split(",") if holders != "-" else [] for holders in cluster.ctl("blocks", path).split()]


def wait_for_pipeline(cluster, path, count):
    """Waits until block number COUNT of PATH is being written, and returns its pipeline's DataNodes."""
    found = []

    def allocated():
        found[:] = blocks(cluster, path)
        return len(found) >= count and found[count - 1]
    wait_for(allocated, SETTLE_TIMEOUT, f"block {count} of {path} to be allocated", step=0.2)
    return found[count - 1]


def wait_for_replicas(cluster, path, replicas=2):
    wait_for(lambda: all(len(holders) >= replicas for holders in blocks(cluster, path)), SETTLE_TIMEOUT,
             f"{replicas} replicas of every block of {path}", step=0.5)


def assert_workers_free(server):
    """All MAX_CLIENTS workers serve a new session at once: none was left hanging by a fault."""
    sessions = [server.ftp() for _ in range(MAX_CLIENTS)]
    for client in sessions:
        assert client.sendcmd("PWD").startswith("257")
    for client in sessions:
        client.quit()


# --------------------------------------------------------------------------------------------------
# DataNodes
# --------------------------------------------------------------------------------------------------

def test_datanode_stopped_mid_upload_the_pipeline_recovers(fault_server, fault_cluster):
    name, payload = "pipeline.bin", os.urandom(24 * BLOCK)
    with fault_server.session() as client:
        data = open_transfer(client, f"STOR {name}")
        # Halfway into the second block, its pipeline (two DataNodes) is open; one of them goes.
        data.sendall(payload[:BLOCK + BLOCK // 2])
        pipeline = wait_for_pipeline(fault_cluster, fault_server.hdfs_path(name), 2)
        victim = pipeline[0]
        fault_cluster.ctl("stop-datanode", victim)
        try:
            data.sendall(payload[BLOCK + BLOCK // 2:])
            data.close()
            assert final_reply(client).startswith("226")
            assert fault_server.recorded(name) == payload
            assert fault_server.transfers(name) == [("i", len(payload), "c")]
            # The blocks written after the stop went to DataNodes that were running.
            assert all(victim not in holders for holders in blocks(fault_cluster, fault_server.hdfs_path(name))[2:])
        finally:
            fault_cluster.ctl("start-datanode", victim)


def test_every_datanode_stopped_mid_upload_the_client_is_told(fault_server, fault_cluster):
    name, payload = "no-pipeline.bin", os.urandom(24 * BLOCK)
    with fault_server.session() as client:
        data = open_transfer(client, f"STOR {name}")
        data.sendall(payload[:BLOCK + BLOCK // 2])
        wait_for_pipeline(fault_cluster, fault_server.hdfs_path(name), 2)
        fault_cluster.ctl("stop-datanode", 0, 1, 2)
        try:
            try:
                data.sendall(payload[BLOCK + BLOCK // 2:])
            except OSError:
                pass  # the server may give up on the data connection before it has all of it
            data.close()
            reply = final_reply(client)
            assert re.match(r"[45]\d\d ", reply), reply
            assert "All datanodes" in reply and "are bad" in reply, reply
            [(direction, logged, completion)] = fault_server.transfers(name)
            assert (direction, completion) == ("i", "i") and logged < len(payload)
        finally:
            for index in range(3):
                fault_cluster.ctl("start-datanode", index)
        # The session goes on.
        assert client.sendcmd("PWD").startswith("257")


def test_datanode_stopped_mid_download_the_read_goes_on_from_another_replica(fault_server, fault_cluster):
    name, payload = "replicated.bin", os.urandom(128 * BLOCK)
    with fault_server.session() as client:
        client.storbinary(f"STOR {name}", io.BytesIO(payload))
        path = fault_server.hdfs_path(name)
        wait_for_replicas(fault_cluster, path)
        data = open_transfer(client, f"RETR {name}")
        received = bytearray()
        while len(received) < 4 * BLOCK:
            received += data.recv(BLOCK)
        # The DataNode holding most of the file's second half, which the gateway has not read yet (it reads
        # a few MiB ahead). The reader tries a block's replicas in random order and the NameNode still lists
        # the stopped DataNode, so it meets it dead (for ~40 blocks, all but surely).
        second_half = blocks(fault_cluster, path)[64:]
        victim, _ = Counter(node for holders in second_half for node in holders).most_common(1)[0]
        log_before = len(fault_server.log_text())
        fault_cluster.ctl("stop-datanode", victim)
        try:
            received += read_all(data)
            assert final_reply(client).startswith("226")
            assert bytes(received) == payload
            assert fault_server.transfers(name)[-1] == ("o", len(payload), "c")
            # The Hadoop client left the stopped DataNode for another replica.
            left_dead_node = re.compile(r"add to deadNodes and continue|Exception while reading from")
            assert left_dead_node.search(fault_server.log_text()[log_before:]), fault_server.log_tail()
        finally:
            fault_cluster.ctl("start-datanode", victim)


# --------------------------------------------------------------------------------------------------
# NameNode
# --------------------------------------------------------------------------------------------------

def test_namenode_restarted_between_commands_the_next_ones_work(fault_server, fault_cluster):
    payload = os.urandom(3 * BLOCK)
    with fault_server.session() as client:
        client.storbinary("STOR before-restart.bin", io.BytesIO(payload))
        fault_cluster.ctl("restart-namenode")
        # The session's NameNode connection sat idle across the restart; the very next command works.
        assert client.sendcmd("SIZE before-restart.bin") == f"213 {len(payload)}"
        assert "before-restart.bin" in client.nlst()
        client.voidcmd("TYPE I")
        received = io.BytesIO()
        assert client.retrbinary("RETR before-restart.bin", received.write).startswith("226")
        assert received.getvalue() == payload
        assert client.storbinary("STOR after-restart.bin", io.BytesIO(payload)).startswith("226")
        assert fault_server.recorded("after-restart.bin") == payload


def test_namenode_down_commands_fail_with_a_clear_reply_then_work_again(fault_server, fault_cluster):
    with fault_server.session() as client:
        client.storbinary("STOR before-stop.bin", io.BytesIO(b"kept"))
        fault_cluster.ctl("stop-namenode")
        try:
            reply = final_reply_of(client, "SIZE before-stop.bin")
            assert reply.startswith("451 ") and "Connection refused" in reply, reply
            try:
                client.storbinary("STOR while-down.bin", io.BytesIO(b"lost"))
                raise AssertionError("STOR succeeded with the NameNode down")
            except Exception as error:
                assert str(error).startswith("451 ") and "Connection refused" in str(error), error
            assert fault_server.transfers("while-down.bin") == [("i", 0, "i")]
        finally:
            fault_cluster.ctl("start-namenode")
        assert client.sendcmd("SIZE before-stop.bin") == "213 4"
        assert client.storbinary("STOR after-start.bin", io.BytesIO(b"back")).startswith("226")
        assert fault_server.recorded("after-start.bin") == b"back"


def test_a_shared_connection_that_failed_goes_to_no_new_session(fault_server, fault_cluster):
    """The user's sessions share one HDFS connection. A login whose look at the home fails on it for a
    reason other than the path (here the NameNode is down) withdraws it and tries a new connection; the
    login is refused with 421 while HDFS cannot answer, and the next one after works."""
    with fault_server.session() as held:
        held.storbinary("STOR shared-before.bin", io.BytesIO(b"kept"))
        fault_cluster.ctl("stop-namenode")
        try:
            with pytest.raises(Exception) as refused:
                fault_server.ftp()
            assert str(refused.value).startswith("421 ") and "Connection refused" in str(refused.value)
            fault_server.wait_for_log(f"the shared connection of {fault_server.user} goes to no new session")
        finally:
            fault_cluster.ctl("start-namenode")
        with fault_server.session() as fresh:
            assert fresh.storbinary("STOR shared-after.bin", io.BytesIO(b"back")).startswith("226")
        # The session that held the withdrawn connection goes on with it.
        assert held.sendcmd("SIZE shared-before.bin") == "213 4"
    assert fault_server.recorded("shared-after.bin") == b"back"


# --------------------------------------------------------------------------------------------------
# safe mode and quotas
# --------------------------------------------------------------------------------------------------

def test_safe_mode_refuses_writes_with_4xx_naming_it_and_reads_work(fault_server, fault_cluster):
    payload = os.urandom(2 * BLOCK)
    with fault_server.session() as client:
        client.storbinary("STOR readable.bin", io.BytesIO(payload))
        client.sendcmd("MKD emptied")
        assert fault_cluster.ctl("safemode", "enter") == "on"
        try:
            try:
                client.storbinary("STOR refused.bin", io.BytesIO(b"not now"))
                raise AssertionError("STOR succeeded in safe mode")
            except Exception as error:
                assert re.match(r"4\d\d ", str(error)) and "safe mode" in str(error), error
            assert fault_server.transfers("refused.bin") == [("i", 0, "i")]
            for command in ("MKD new-dir", "DELE readable.bin", "RMD emptied", "SITE CHMOD 600 readable.bin"):
                reply = final_reply_of(client, command)
                assert re.match(r"4\d\d ", reply) and "safe mode" in reply, f"{command}: {reply}"
            try:
                client.storbinary("APPE readable.bin", io.BytesIO(b"more"))
                raise AssertionError("APPE succeeded in safe mode")
            except Exception as error:
                assert re.match(r"4\d\d ", str(error)) and "safe mode" in str(error), error
            client.sendcmd("RNFR readable.bin")
            reply = final_reply_of(client, "RNTO renamed.bin")
            assert re.match(r"4\d\d ", reply) and "safe mode" in reply, reply
            received = io.BytesIO()
            assert client.retrbinary("RETR readable.bin", received.write).startswith("226")
            assert received.getvalue() == payload
            assert "readable.bin" in client.nlst()
        finally:
            assert fault_cluster.ctl("safemode", "leave") == "off"
        assert client.storbinary("STOR refused.bin", io.BytesIO(b"now")).startswith("226")
        assert fault_server.recorded("readable.bin") == payload


def test_exceeded_space_quota_is_552(fault_server, fault_cluster):
    with fault_server.session() as client:
        client.sendcmd("MKD quota")
        quota_dir = fault_server.hdfs_path("quota")
        # Room for one block of two replicas: a small file fits, a file of several blocks does not.
        fault_cluster.ctl("quota", quota_dir, 2 * BLOCK + BLOCK // 2)
        try:
            assert client.storbinary("STOR quota/small.bin", io.BytesIO(b"s" * 1000)).startswith("226")
            payload = os.urandom(4 * BLOCK)
            try:
                client.storbinary("STOR quota/big.bin", io.BytesIO(payload))
                raise AssertionError("STOR beyond the quota succeeded")
            except Exception as error:
                assert str(error).startswith("552 ") and "quota" in str(error), error
            [(_, logged, completion)] = fault_server.transfers("quota/big.bin")
            assert completion == "i" and logged <= len(payload)
            assert fault_cluster.stat(f"{quota_dir}/big.bin")["size"] < len(payload)
            # A file under one block fails only when it is closed: 552 all the same.
            fault_cluster.ctl("quota", quota_dir, BLOCK)
            try:
                client.storbinary("STOR quota/closed.bin", io.BytesIO(b"c" * 1000))
                raise AssertionError("STOR beyond the quota succeeded")
            except Exception as error:
                assert str(error).startswith("552 ") and "quota" in str(error), error
            assert fault_server.transfers("quota/closed.bin") == [("i", 1000, "i")]
        finally:
            fault_cluster.ctl("quota", quota_dir, "clear")
        assert client.storbinary("STOR quota/big.bin", io.BytesIO(payload)).startswith("226")
        assert fault_server.recorded("quota/big.bin") == payload


def test_exceeded_name_quota_is_552(fault_server, fault_cluster):
    with fault_server.session() as client:
        client.sendcmd("MKD names")
        names_dir = fault_server.hdfs_path("names")
        # The directory and one file.
        fault_cluster.ctl("name-quota", names_dir, 2)
        try:
            assert client.storbinary("STOR names/one.bin", io.BytesIO(b"1")).startswith("226")
            try:
                client.storbinary("STOR names/two.bin", io.BytesIO(b"2"))
                raise AssertionError("STOR beyond the name quota succeeded")
            except Exception as error:
                assert str(error).startswith("552 ") and "quota" in str(error), error
            assert fault_server.transfers("names/two.bin") == [("i", 0, "i")]
            assert not fault_cluster.exists(f"{names_dir}/two.bin")
        finally:
            fault_cluster.ctl("name-quota", names_dir, "clear")
        assert client.storbinary("STOR names/two.bin", io.BytesIO(b"2")).startswith("226")


def test_no_worker_is_left_hanging_by_the_faults(fault_server):
    assert_workers_free(fault_server)


# --------------------------------------------------------------------------------------------------
# HA: the gateway knows the nameservice, not a NameNode
# --------------------------------------------------------------------------------------------------

def test_ha_failover_during_a_session_lets_it_go_on(ha_server, ha_cluster):
    assert ha_cluster.env["HDFS_URI"] == "hdfs://hdfsftpd-ns"
    assert ha_server.args[ha_server.args.index("--hdfs-uri") + 1] == "hdfs://hdfsftpd-ns"
    payload = os.urandom(16 * BLOCK)
    with ha_server.session() as client:
        client.storbinary("STOR first.bin", io.BytesIO(payload))

        def fail_over():
            before = ha_cluster.ctl("active")
            ha_cluster.ctl("failover")
            assert ha_cluster.ctl("active") != before

        # Between commands.
        fail_over()
        assert client.sendcmd("SIZE first.bin") == f"213 {len(payload)}"
        assert client.sendcmd("MKD after-failover").startswith("257")
        assert client.storbinary("STOR second.bin", io.BytesIO(payload)).startswith("226")
        assert ha_server.recorded("second.bin") == payload

        # During an upload: the blocks after the failover are allocated by the other NameNode.
        data = open_transfer(client, "STOR across.bin")
        data.sendall(payload[:len(payload) // 4])
        wait_for_pipeline(ha_cluster, ha_server.hdfs_path("across.bin"), 2)
        fail_over()
        data.sendall(payload[len(payload) // 4:])
        data.close()
        assert final_reply(client).startswith("226")
        assert ha_server.recorded("across.bin") == payload

        # During a download.
        data = open_transfer(client, "RETR across.bin")
        received = bytearray(data.recv(BLOCK))
        fail_over()
        received += read_all(data)
        assert final_reply(client).startswith("226")
        assert bytes(received) == payload
        assert [record[2] for record in ha_server.transfers("across.bin")] == ["c", "c"]
    assert_workers_free(ha_server)
