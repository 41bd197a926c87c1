"""Several nodes behind one name on one storage: three hdfsftpd nodes on 127.0.0.11-13, each with its
own --pasv-address, behind Debian's HAProxy on 127.0.0.10 in TCP mode with send-proxy-v2 and an FTP
health check. Clients only ever connect to the balancer; data connections go straight to the node
that holds the control connection (its PASV reply names it).

The nodes share the session's real HDFS (tests/hdfs_cluster.py: a NameNode and three DataNodes), each
through its own libhdfs and JVM, with --atomic-uploads; what HDFS recorded is read through the cluster's
own Hadoop API, not through a node.
"""

import ftplib
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import make_payload, require_tool, run, sha256_bytes, wait_for
from harness import Daemon, listen_args, users_auth_args, write_users_file
from hdfs_cluster import HdfsPath, listdir, unique_user

BALANCER = "127.0.0.10"
NODES = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
CLIENT = "127.0.0.1"
PASSWORD = "mn-secret"
MAX_CLIENTS = 16  # the default: the nodes are started without --max-clients
CHECK_INTERVAL_MS = 300
PASV_PORTS = "30000-30999"  # the same range on every node, as a firewall would open it


def port_free_on(addresses):
    """One port free on every address (the nodes listen on the same port, as on real hosts)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as s:
                    s.bind((address, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on all node addresses")


class Node(Daemon):
    """One hdfsftpd on its own loopback address, trusting the balancer's PROXY header."""

    def __init__(self, workdir, address, port, storage_args, user, users_file):
        args = [
            *listen_args(port, (address,)), *storage_args, "--atomic-uploads", *users_auth_args(users_file),
            "--pasv-address", address, "--pasv-ports", PASV_PORTS, "--proxy-protocol-from", f"{BALANCER}/32",
            # Every test client is 127.0.0.1: no per-address cap, so --max-clients is the one that binds.
            "--max-per-ip", "0",
        ]
        super().__init__(workdir / f"node-{address}", args, port=port, hosts=(address,),
                         users={user: PASSWORD}, users_file=users_file)
        self.address = address

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


class Balancer:
    """HAProxy in TCP mode in front of the nodes; its stats socket tells which nodes it sees up."""

    def __init__(self, base, port, nodes):
        self.haproxy = require_tool("haproxy")
        self.port = port
        self.stats = base / "haproxy.sock"
        self.config = base / "haproxy.cfg"
        self.log_path = base / "haproxy.log"
        servers = "\n".join(f"    server node{i + 1} {n.address}:{n.port}" for i, n in enumerate(nodes))
        self.config.write_text(f"""\
global
    stats socket {self.stats} mode 600 level admin
    maxconn 1000

defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    timeout check 5s

frontend ftp
    bind {BALANCER}:{port}
    default_backend nodes

backend nodes
    balance leastconn
    source {BALANCER}
    # An FTP check: a node is up when it greets (220, or 421 when at its --max-clients) and says goodbye.
    option tcp-check
    tcp-check expect rstring ^(220|421)
    tcp-check send QUIT\\r\\n
    default-server send-proxy-v2 check inter {CHECK_INTERVAL_MS} fall 2 rise 1
{servers}
""")
        self.proc = None

    def start(self):
        result = run([self.haproxy, "-c", "-f", str(self.config)], timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.haproxy, "-db", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()

    def states(self):
        """node name -> HAProxy's status (UP, DOWN, ...), from the stats socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.stats))
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "nodes" and r["svname"].startswith("node")}

    def wait_until(self, wanted, what):
        deadline = time.monotonic() + 30
        while (states := self.states()) != wanted:
            if time.monotonic() > deadline:
                pytest.fail(f"HAProxy does not see {what}: {states}\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)


class Cluster:
    """The nodes, on the HDFS cluster `hdfs`, serving one user of their own (home /user/NAME)."""

    def __init__(self, base, hdfs):
        self.user = unique_user("mn")
        hdfs.add_user(self.user, PASSWORD)
        self.home_path = HdfsPath(hdfs, f"/user/{self.user}", self.user, base)
        users_file = write_users_file(base / "users", {self.user: (PASSWORD, "", "rw")})
        port = port_free_on(NODES)
        self.nodes = [Node(base, a, port, hdfs.server_args(), self.user, users_file) for a in NODES]
        self.balancer = Balancer(base, port_free_on([BALANCER]), self.nodes)
        self.all_up = {f"node{i + 1}": "UP" for i in range(len(self.nodes))}

    def home(self):
        return self.home_path

    def session(self):
        """A logged-in ftplib session through the balancer, binary mode, and the node it landed on
        (the address its PASV reply names)."""
        ftp = ftplib.FTP(timeout=60)
        ftp.connect(BALANCER, self.balancer.port, source_address=(CLIENT, 0))
        ftp.login(self.user, PASSWORD)
        ftp.voidcmd("TYPE I")
        # ftplib would connect to the balancer's address instead of the one PASV names.
        ftp.trust_server_pasv_ipv4_address = True
        host, _ = ftp.makepasv()
        ftp.node = self.node_at(host)
        return ftp

    def sessions_on_distinct_nodes(self, count):
        """Sessions on `count` different nodes (the others opened meanwhile are closed)."""
        chosen, spare = {}, []
        for _ in range(30):
            ftp = self.session()
            if ftp.node.address in chosen:
                spare.append(ftp)
            else:
                chosen[ftp.node.address] = ftp
            if len(chosen) == count:
                break
        for ftp in spare:
            ftp.close()
        assert len(chosen) == count, f"sessions landed on {sorted(chosen)} only"
        return list(chosen.values())

    def node_at(self, address):
        [node] = [n for n in self.nodes if n.address == address]
        return node


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, hdfs_cluster):
    cluster = Cluster(tmp_path_factory.mktemp("multinode"), hdfs_cluster)
    try:
        for node in cluster.nodes:
            node.start()
        cluster.balancer.start()
        cluster.balancer.wait_until(cluster.all_up, "every node up")
        yield cluster
    finally:
        cluster.balancer.stop()
        for node in cluster.nodes:
            node.stop()


def test_logins_spread_over_the_nodes_with_the_clients_address(cluster):
    sessions = [cluster.session() for _ in range(6)]
    assert {s.node.address for s in sessions} == set(NODES)
    for ftp in sessions:
        # The node saw the client's own address and port (from the PROXY header), not the balancer's.
        client_port = ftp.sock.getsockname()[1]
        wait_for(lambda: f"{CLIENT}:{client_port}: login {cluster.user}" in ftp.node.log_text(), 10,
                 f"the login line of {CLIENT}:{client_port} on {ftp.node.address}")
        assert f"Connected to {CLIENT}" in ftp.sendcmd("STAT")
        ftp.quit()


def test_passive_replies_name_the_node_and_data_goes_straight_to_it(cluster):
    ftp = cluster.session()
    reply = ftp.sendcmd("PASV")
    assert reply.startswith("227") and ftp.node.address.replace(".", ",") in reply, reply
    # EPSV carries no address: the client would connect to the balancer, where no data port is.
    with pytest.raises(ftplib.error_perm, match="^502 .*use PASV"):
        ftp.sendcmd("EPSV")
    payload = make_payload(3 << 20, seed=11)
    data = socket.create_connection(ftp.makepasv(), timeout=30)
    assert data.getpeername()[0] == ftp.node.address, "the data connection bypasses the balancer"
    ftp.putcmd("STOR direct.bin")
    assert ftp.getresp().startswith("150")
    data.sendall(payload)
    data.close()
    assert ftp.voidresp().startswith("226")
    assert sha256_bytes((cluster.home() / "direct.bin").read_bytes()) == sha256_bytes(payload)
    ftp.quit()


def test_a_file_uploaded_through_one_node_is_listed_and_downloaded_through_another(cluster, tmp_path):
    writer, reader = cluster.sessions_on_distinct_nodes(2)
    payload = make_payload(5 << 20, seed=12)
    source = tmp_path / "across.bin"
    source.write_bytes(payload)
    with open(source, "rb") as f:
        assert writer.storbinary("STOR across.bin", f).startswith("226")
    assert "across.bin" in reader.nlst()
    got = bytearray()
    assert reader.retrbinary("RETR across.bin", got.extend).startswith("226")
    assert sha256_bytes(bytes(got)) == sha256_bytes(payload)
    writer.quit()
    reader.quit()
    # curl through the balancer, on whichever node it lands: its EPSV is refused, it falls back to PASV
    # and (told to: since 7.74 it ignores the PASV address by default) connects to the node it names.
    out = tmp_path / "curl.bin"
    result = run(["curl", "-sS", "-v", "--no-ftp-skip-pasv-ip", "-o", str(out),
                  f"ftp://{cluster.user}:{PASSWORD}@{BALANCER}:{cluster.balancer.port}/across.bin"], timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"< 502 EPSV cannot name this node" in result.stderr and b"< 227 Entering Passive Mode" in result.stderr
    assert sha256_bytes(out.read_bytes()) == sha256_bytes(payload)


def test_an_atomic_upload_is_invisible_through_another_node_until_complete(cluster):
    writer, reader = cluster.sessions_on_distinct_nodes(2)
    payload = make_payload(4 << 20, seed=13)
    data = writer.transfercmd("STOR growing.bin")
    data.sendall(payload[: 2 << 20])
    # The upload is under way in HDFS, under a hidden name: the other node neither lists nor sizes it.
    wait_for(lambda: any(n.startswith(".growing.bin") for n in listdir(cluster.home())), 30,
             "HDFS to hold the upload's hidden temporary file")
    assert "growing.bin" not in reader.nlst()
    assert not [name for name in reader.nlst() if "growing" in name], "the temporary name is hidden too"
    with pytest.raises(ftplib.error_perm, match="^550"):
        reader.size("growing.bin")
    data.sendall(payload[2 << 20:])
    data.close()
    assert writer.voidresp().startswith("226")
    assert reader.size("growing.bin") == len(payload)
    got = bytearray()
    reader.retrbinary("RETR growing.bin", got.extend)
    assert sha256_bytes(bytes(got)) == sha256_bytes(payload)
    writer.quit()
    reader.quit()


def test_each_node_enforces_its_own_max_clients(cluster):
    """16 sessions per node (the default --max-clients) through the balancer; one more gets the
    node's 421. A health check can hold a node's place for an instant: a 421 while some node still
    has room is that race, and the place is asked for again."""
    held = []
    try:
        refusal = None
        for _ in range(len(NODES) * MAX_CLIENTS + 20):
            counts = {a: sum(1 for s in held if s.node.address == a) for a in NODES}
            assert max(counts.values()) <= MAX_CLIENTS, f"a node took more than its cap: {counts}"
            try:
                held.append(cluster.session())
            except ftplib.error_temp as e:
                if min(counts.values()) < MAX_CLIENTS:
                    time.sleep(0.05)
                    continue
                refusal = str(e)
                break
        counts = {a: sum(1 for s in held if s.node.address == a) for a in NODES}
        assert counts == {a: MAX_CLIENTS for a in NODES}, counts
        assert refusal is not None and refusal.startswith("421 Too many users"), refusal
        refused_on = [n.address for n in cluster.nodes if "Too many users" in n.log_text()]
        assert refused_on, "no node logged the refusal"
    finally:
        for ftp in held:
            ftp.close()
    cluster.balancer.wait_until(cluster.all_up, "every node up again")


def test_a_node_killed_mid_transfer_costs_only_that_transfer(cluster):
    """Runs last: it kills a node. SIGKILL mid-download: that client sees the transfer fail, never a 226;
    a session on another node goes on; once the health check drops the dead node, new sessions
    through the balancer all work."""
    big = make_payload(48 << 20, seed=14)
    (cluster.home() / "big.bin").write_bytes(big)
    victim_session, survivor = cluster.sessions_on_distinct_nodes(2)
    victim = victim_session.node
    data = victim_session.transfercmd("RETR big.bin")
    received = len(data.recv(1 << 20))
    assert received > 0
    victim.kill()
    try:
        while chunk := data.recv(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass
    data.close()
    assert received < len(big), "the download cannot be complete"
    try:
        reply = victim_session.getresp()
    except (EOFError, ConnectionResetError, ftplib.Error) as e:
        reply = f"failed: {e!r}"
    assert not reply.startswith("226"), reply

    got = bytearray()
    assert survivor.retrbinary("RETR big.bin", got.extend).startswith("226")
    assert sha256_bytes(bytes(got)) == sha256_bytes(big)
    survivor.quit()

    dead = f"node{cluster.nodes.index(victim) + 1}"
    cluster.balancer.wait_until({**cluster.all_up, dead: "DOWN"}, f"{dead} down")
    payload = make_payload(1 << 20, seed=15)
    for i in range(6):
        ftp = cluster.session()
        assert ftp.node is not victim
        name = f"after-{i}.bin"
        data = ftp.transfercmd(f"STOR {name}")
        data.sendall(payload)
        data.close()
        assert ftp.voidresp().startswith("226")
        assert ftp.size(name) == len(payload)
        ftp.quit()
    assert (cluster.home() / "after-5.bin").read_bytes() == payload
