"""PROXY protocol (v1 and v2) on the control listeners, driven by raw sockets playing the balancer.

The balancer is 127.0.0.3 (the only --proxy-protocol-from address); the clients its headers name are
127.0.0.5 and 127.0.0.6, and a test that makes a data connection "as the client" binds its socket to
that address, as the real client behind a TCP balancer would connect to the node directly.
"""

import re
import socket
import ssl
import struct
import time

import pytest

from conftest import HOST, RawFTP, free_port, make_payload, recv_all, sha256_bytes, wait_for
from harness import tls_args
from tls_fixtures import make_cert

BALANCER = "127.0.0.3"
CLIENT = "127.0.0.5"
OTHER_CLIENT = "127.0.0.6"
LOGIN_TIMEOUT = 4
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(client, client_port=40000, proto="TCP4", server="127.0.0.1", server_port=21):
    return f"PROXY {proto} {client} {server} {client_port} {server_port}\r\n".encode()


def v2(client, client_port=40000, command=0x21, family=0x11, extra=b""):
    payload = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", client_port, 21)
    payload += extra
    return V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", len(payload)) + payload


class Relayed(RawFTP):
    """A control connection from the balancer's address that starts with `header`."""

    def __init__(self, port, header, source=BALANCER, timeout=15):
        self.host = HOST
        self.sock = socket.create_connection((HOST, port), timeout=timeout, source_address=(source, 0))
        self.buf = b""
        if header:
            self.sock.sendall(header)
        self.banner = self.reply()


def closed_after(conn, timeout=15):
    """What the server said before closing the connection (fails if it stays open)."""
    said = []
    while True:
        line = conn.readline(timeout=timeout)
        if line is None:
            return "\n".join(said)
        said.append(line.decode("utf-8", "replace"))


def pasv_port(reply):
    numbers = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", reply).groups()
    return ".".join(numbers[:4]), int(numbers[4]) * 256 + int(numbers[5])


@pytest.fixture
def proxied(make_server, tmp_path):
    """A server that trusts the balancer, with an xferlog."""
    xferlog = tmp_path / "xferlog"
    srv = make_server("--proxy-protocol-from", f"{BALANCER}/32", "--login-timeout", str(LOGIN_TIMEOUT),
                      "--xferlog", str(xferlog), "--max-per-ip", "2", "--login-fail-delay", "0")
    srv.xferlog = xferlog
    return srv


@pytest.mark.parametrize("header", [v1(CLIENT, 40001), v2(CLIENT, 40001)], ids=["v1", "v2"])
def test_the_carried_address_is_the_client_everywhere(proxied, header):
    conn = Relayed(proxied.port, header)
    assert conn.banner.startswith("220"), conn.banner
    conn.login("alice", proxied.password("alice"))
    assert f"Connected to {CLIENT}" in conn.cmd("STAT")
    assert proxied.wait_for_log(lambda l: f"{CLIENT}:40001: login alice" in l), proxied.log_tail()

    assert conn.cmd("TYPE I").startswith("200")
    # The passive check uses the carried address: the balancer's own address is a stranger...
    host, port = pasv_port(conn.cmd("PASV"))
    stranger = socket.create_connection((host, port), timeout=10, source_address=(BALANCER, 0))
    payload = make_payload(200_000, seed=3)
    conn.send("STOR relayed.bin\r\n")
    # ...and the client's own connection is the one taken.
    data = socket.create_connection((host, port), timeout=10, source_address=(CLIENT, 0))
    assert conn.reply().startswith("150")
    data.sendall(payload)
    data.close()
    assert conn.reply().startswith("226")
    stranger.close()
    assert sha256_bytes((proxied.home() / "relayed.bin").read_bytes()) == sha256_bytes(payload)
    assert proxied.wait_for_log(
        lambda l: f"passive data connection from {BALANCER}" in l and f"control connection is from {CLIENT}" in l
    ), proxied.log_tail()

    # PORT/EPRT may aim at the client, not at the balancer.
    assert conn.cmd(f"PORT {CLIENT.replace('.', ',')},200,1").startswith("200")
    refused = conn.cmd(f"EPRT |1|{BALANCER}|50000|")
    assert refused.startswith("504") and f"your own address ({CLIENT})" in refused, refused
    conn.cmd("QUIT")
    conn.close()

    xfer = proxied.xferlog.read_text().split()
    assert xfer[6] == CLIENT, f"xferlog remote-host: {proxied.xferlog.read_text()!r}"


def test_v1_tcp6_and_the_health_checks_local_headers(proxied):
    conn = Relayed(proxied.port, v1("::1", 40002, proto="TCP6", server="::1"))
    conn.login("alice", proxied.password("alice"))
    assert "Connected to ::1" in conn.cmd("STAT")
    conn.close()
    # A balancer's health check speaks for itself: the session's client is the balancer.
    for header in [b"PROXY UNKNOWN\r\n", v2(CLIENT, command=0x20), v2(CLIENT, family=0x00)]:
        check = Relayed(proxied.port, header)
        assert check.banner.startswith("220"), (header, check.banner)
        check.login("alice", proxied.password("alice"))
        assert f"Connected to {BALANCER}" in check.cmd("STAT")
        check.close()


def test_tlvs_after_the_addresses_are_skipped(proxied):
    unique_id = b"\x05" + struct.pack("!H", 16) + b"0123456789abcdef"
    conn = Relayed(proxied.port, v2(CLIENT, extra=unique_id + b"\x04\x00\x03pad"))
    conn.login("alice", proxied.password("alice"))
    assert f"Connected to {CLIENT}" in conn.cmd("STAT")
    conn.close()


BAD_HEADERS = {
    "v1 without CRLF, too long": b"PROXY TCP4 " + b"1" * 120,
    "v1 unknown protocol": b"PROXY UDP4 127.0.0.5 127.0.0.1 40000 21\r\n",
    "v1 IPv6 address as TCP4": b"PROXY TCP4 ::1 127.0.0.1 40000 21\r\n",
    "v2 wrong signature": V2_SIGNATURE[:8] + b"WAIT\n" + v2(CLIENT)[12:],
    "v2 oversized": V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 60000) + b"\0" * 2000,
    "v2 unknown family": v2(CLIENT, family=0x41),
    "v2 UNIX family": V2_SIGNATURE + b"\x21\x31" + struct.pack("!H", 216) + b"\0" * 216,
    "v2 unknown command": v2(CLIENT, command=0x2F),
    "v2 length shorter than the addresses": V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x7f\x00\x00\x05",
    "no header, a command": b"USER alice\r\n",
    "no header, a TLS ClientHello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
}


def test_bad_headers_are_refused_and_affect_nothing_else(proxied):
    bystander = Relayed(proxied.port, v1(OTHER_CLIENT))
    bystander.login("alice", proxied.password("alice"))
    for name, header in BAD_HEADERS.items():
        conn = Relayed(proxied.port, header)
        said = conn.banner + closed_after(conn)
        assert said.startswith("421") and "PROXY" in said, f"{name}: {said!r}"
        conn.close()
    log = proxied.log_text()
    assert log.count(f"{BALANCER}") >= len(BAD_HEADERS), log
    assert "too long" in log and "unknown" in log and "no PROXY header" in log, proxied.log_tail(40)
    # The session that was open meanwhile and a new one both still work.
    assert bystander.cmd("PWD").startswith("257")
    fresh = Relayed(proxied.port, v2(CLIENT))
    fresh.login("alice", proxied.password("alice"))
    fresh.close()
    bystander.close()


@pytest.mark.parametrize("sent", [b"", v1(CLIENT)[:20], v2(CLIENT)[:20]], ids=["nothing", "half v1", "half v2"])
def test_a_missing_or_truncated_header_is_closed_within_the_login_timeout(proxied, sent):
    started = time.monotonic()
    conn = Relayed(proxied.port, sent)
    said = conn.banner + closed_after(conn, timeout=LOGIN_TIMEOUT + 20)
    assert said.startswith("421") and "PROXY" in said, said
    # Closed by the login timeout: not before it (the server waited for the rest), and it did close.
    assert time.monotonic() - started >= LOGIN_TIMEOUT - 0.5
    assert proxied.wait_for_log(lambda l: "within the login timeout" in l), proxied.log_tail()


def test_a_header_cut_short_by_the_close_is_refused(proxied):
    conn = socket.create_connection((HOST, proxied.port), timeout=10, source_address=(BALANCER, 0))
    conn.sendall(v2(CLIENT)[:20])
    conn.shutdown(socket.SHUT_WR)
    assert conn.recv(100).startswith(b"421")
    conn.close()
    assert proxied.wait_for_log(lambda l: "cut short" in l), proxied.log_tail()


@pytest.mark.parametrize("header", [v1(CLIENT), v2(CLIENT)], ids=["v1", "v2"])
def test_a_header_from_an_untrusted_address_is_refused(proxied, header):
    conn = Relayed(proxied.port, header, source="127.0.0.1")
    said = conn.banner + "\n" + closed_after(conn)
    assert "421 PROXY protocol header not accepted" in said, said
    assert proxied.wait_for_log(lambda l: "127.0.0.1" in l and "proxy header refused" in l), proxied.log_tail()
    # Ordinary clients from there are served as before.
    direct = RawFTP(HOST, proxied.port)
    direct.login("alice", proxied.password("alice"))
    assert "Connected to 127.0.0.1" in direct.cmd("STAT")
    direct.close()


def test_the_per_address_cap_counts_carried_addresses(proxied):
    """--max-per-ip 2: two sessions for one carried client, a third is refused; other clients
    behind the same balancer are not held back by it."""
    held = [Relayed(proxied.port, v1(CLIENT, 41000 + i)) for i in range(2)]
    assert all(c.banner.startswith("220") for c in held)
    third = Relayed(proxied.port, v1(CLIENT, 41002))
    assert third.banner.startswith("421") and "your address" in third.banner, third.banner
    assert closed_after(third) == ""
    assert proxied.wait_for_log(lambda l: f"{CLIENT}:41002 (through {BALANCER}" in l and "refused" in l)
    others = [Relayed(proxied.port, v2(OTHER_CLIENT, 42000 + i)) for i in range(2)]
    assert all(c.banner.startswith("220") for c in others), [c.banner for c in others]
    # A place freed is a place for that client again.
    held.pop().cmd("QUIT")
    again = None
    for _ in range(50):
        again = Relayed(proxied.port, v1(CLIENT, 41003))
        if again.banner.startswith("220"):
            break
        time.sleep(0.1)
    assert again.banner.startswith("220"), again.banner
    for conn in held + others + [again]:
        conn.close()


def test_the_lockout_counts_carried_addresses(make_server):
    srv = make_server("--proxy-protocol-from", BALANCER, "--lockout-after", "2", "--lockout-secs", "60",
                      "--login-fail-delay", "0")
    for user in ["mallory", "trudy"]:
        conn = Relayed(srv.port, v1(CLIENT))
        assert conn.cmd(f"USER {user}").startswith("331")
        assert conn.cmd("PASS wrong").startswith("530")
        conn.close()
    locked = Relayed(srv.port, v1(CLIENT))
    locked.cmd("USER alice")
    assert locked.cmd(f"PASS {srv.password('alice')}").startswith("530")
    assert srv.wait_for_log(lambda l: f"address {CLIENT} is locked out" in l), srv.log_tail()
    locked.close()
    # The balancer and its other clients are not locked out.
    fine = Relayed(srv.port, v1(OTHER_CLIENT))
    fine.login("alice", srv.password("alice"))
    fine.close()


def test_implicit_ftps_reads_the_header_before_the_handshake(make_server, tmp_path):
    certs = make_cert(tmp_path)
    ftps_port = free_port()
    srv = make_server("--proxy-protocol-from", BALANCER, *tls_args(certs, ftps_port), "--login-timeout",
                      str(LOGIN_TIMEOUT))
    context = ssl.create_default_context(cafile=str(certs["cert"]))
    context.check_hostname = False

    def tls_session(header, source):
        raw = socket.create_connection((HOST, ftps_port), timeout=15, source_address=(source, 0))
        raw.sendall(header)
        conn = Relayed.__new__(Relayed)
        conn.host, conn.buf = HOST, b""
        conn.sock = context.wrap_socket(raw)
        conn.banner = conn.reply()
        return conn

    conn = tls_session(v2(CLIENT, 43000), BALANCER)
    assert conn.banner.startswith("220"), conn.banner
    conn.login("alice", srv.password("alice"))
    assert f"Connected to {CLIENT}" in conn.cmd("STAT")
    conn.close()
    # The handshake's log line names the client too, not the balancer.
    assert srv.wait_for_log(lambda l: f"{CLIENT}:43000: implicit ftps, tls" in l), srv.log_tail()

    untrusted = socket.create_connection((HOST, ftps_port), timeout=15, source_address=("127.0.0.1", 0))
    untrusted.sendall(v1(CLIENT))
    assert untrusted.recv(100).startswith(b"421 PROXY protocol header not accepted"), "no TLS handshake"
    untrusted.close()
    assert srv.wait_for_log(lambda l: "127.0.0.1" in l and "proxy header refused" in l), srv.log_tail()


def test_stalled_implicit_ftps_handshakes_from_clients_lose_their_workers(make_server, tmp_path):
    """With --proxy-protocol-from set, the implicit FTPS port looks for a stray PROXY header before the
    handshake: that look and the handshake share the first-command limit, so silent connections from
    ordinary clients hold their workers for it, not for the login timeout (60 s here)."""
    certs = make_cert(tmp_path)
    ftps_port, workers, first_command_timeout = free_port(), 2, 2
    srv = make_server("--proxy-protocol-from", BALANCER, *tls_args(certs, ftps_port), "--max-clients", str(workers),
                      "--max-per-ip", "0", "--first-command-timeout", str(first_command_timeout))
    silent = []
    while len(silent) < workers:
        # A connection turned away (the server's start-up check may still hold a place) gets a 421 at
        # once; one that holds a worker hears nothing, as the server waits for its TLS handshake.
        sock = socket.create_connection((HOST, ftps_port), timeout=0.5)
        try:
            assert sock.recv(100).startswith(b"421 Too many users")
            sock.close()
            time.sleep(0.1)
        except socket.timeout:
            sock.settimeout(30)
            silent.append(sock)
    probe = RawFTP(HOST, srv.port)
    assert probe.banner.startswith("421 Too many users"), probe.banner
    probe.close()
    # A real user gets in once the silent connections are dropped: within the first-command limit and a
    # margin for a loaded machine, far below the login timeout.
    deadline = time.monotonic() + first_command_timeout + 15
    while not (direct := RawFTP(HOST, srv.port)).banner.startswith("220"):
        direct.close()
        assert time.monotonic() < deadline, "every worker still held by a silent implicit FTPS connection"
        time.sleep(0.1)
    direct.login("alice", srv.password("alice"))
    direct.close()
    for sock in silent:
        assert recv_all(sock, timeout=30) == b""
    wait_for(lambda: srv.log_text().count("implicit FTPS handshake failed: TLS handshake took too long") == workers,
             30, "a log line per stalled handshake")


def test_epsv_is_refused_through_a_balancer_and_pasv_names_the_node(proxied):
    """EPSV's reply has no address: the client would connect to the balancer. PASV is the way."""
    conn = Relayed(proxied.port, v2(CLIENT))
    conn.login("alice", proxied.password("alice"))
    for command in ["EPSV", "EPSV ALL"]:
        reply = conn.cmd(command)
        assert reply.startswith("502") and "use PASV" in reply, reply
    assert conn.cmd("PASV").startswith("227 Entering Passive Mode (127,0,0,1,")
    conn.close()
    # The balancer's own sessions (and direct clients) keep EPSV.
    check = Relayed(proxied.port, v2(CLIENT, command=0x20))
    check.login("alice", proxied.password("alice"))
    assert check.cmd("EPSV").startswith("229")
    check.close()
