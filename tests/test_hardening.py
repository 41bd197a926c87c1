"""Defects found by trying to break the server (issue 13), each pinned by the probe that found it.

Runs in both client suites: on local disk, and with HDFSFTPD_TEST_STORAGE=hdfs on the HDFS backend (there
with --atomic-uploads, where a lost upload leaves nothing at all)."""

import ftplib
import os
import re
import shutil
import signal
import socket
import ssl
import time

import pytest

from conftest import (BIN, HOST, HOST6, STORAGE, MiB, RawFTP, free_port, free_port_range, listdir, make_payload,
                      recv_all, run, sha256_bytes, wait_for)
from tls_fixtures import make_cert

# Where uploads are atomic, a transfer taken for cut short is not published at all.
STORAGE_ARGS = ("--atomic-uploads",) if STORAGE == "hdfs" else ()

TRANSFER_SIZE = 24 * MiB


# --------------------------------------------------------------------------
# 1. commands pipelined during a transfer
# --------------------------------------------------------------------------

# More than 8 KiB of commands, an over-long line among them, and two that show they ran after the transfer.
PIPELINED_NOOPS = 1500
OVERLONG = b"X" * 6000


def pipeline(size_of):
    lines = [b"NOOP"] * PIPELINED_NOOPS + [OVERLONG, b"PWD", b"SIZE " + size_of.encode()]
    return b"".join(line + b"\r\n" for line in lines)


def assert_pipeline_answered(control, size):
    """Every pipelined command answered, in order, after the transfer."""
    for i in range(PIPELINED_NOOPS):
        reply = control.reply(timeout=30)
        assert reply.startswith("200"), f"NOOP {i + 1} of {PIPELINED_NOOPS} got {reply!r}"
    assert control.reply().startswith("500 Command line too long")
    assert control.reply().startswith('257 "/"')
    assert control.reply() == f"213 {size}"
    assert control.cmd("NOOP").startswith("200"), "the session goes on"


def server_has_read_everything(client):
    """True once the server's end of `client` holds no unread bytes, or is gone (Linux /proc/net/tcp)."""
    def hex_address(address):
        host, port = address[:2]
        return f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    try:
        server_end, client_end = hex_address(client.getpeername()), hex_address(client.getsockname())
    except OSError:
        return True
    with open("/proc/net/tcp") as table:
        for row in table.read().splitlines()[1:]:
            fields = row.split()
            if fields[1] == server_end and fields[2] == client_end:
                return int(fields[4].split(":")[1], 16) == 0
    return True


def test_commands_pipelined_during_retr_are_answered_after_it(make_server):
    server = make_server(*STORAGE_ARGS)
    payload = make_payload(TRANSFER_SIZE, seed=1)
    (server.home() / "big.bin").write_bytes(payload)
    control = server.raw()
    assert control.cmd("TYPE I").startswith("200")
    data = control.pasv()
    assert control.cmd("RETR big.bin").startswith("150")
    # The file is larger than every socket buffer on the way: the transfer is still running while the
    # commands arrive, and the server looks at the control connection at every MiB it sends.
    control.send(pipeline("big.bin"))
    received = recv_all(data, timeout=60)
    assert len(received) == TRANSFER_SIZE and sha256_bytes(received) == sha256_bytes(payload)
    assert control.reply(timeout=30).startswith("226")
    assert_pipeline_answered(control, TRANSFER_SIZE)
    control.close()


# Halfway, and once every byte is sent but before the data connection closes: the upload that was
# complete and still discarded under --atomic-uploads, because the commands after it read as a lost client.
@pytest.mark.parametrize("sent_after", [TRANSFER_SIZE // 2, TRANSFER_SIZE], ids=["halfway", "after-the-data"])
def test_commands_pipelined_during_stor_are_answered_after_it(make_server, sent_after):
    server = make_server(*STORAGE_ARGS)
    payload = make_payload(TRANSFER_SIZE, seed=2)
    control = server.raw()
    assert control.cmd("TYPE I").startswith("200")
    data = control.pasv()
    assert control.cmd("STOR up.bin").startswith("150")
    data.sendall(payload[:sent_after])
    control.send(pipeline("up.bin"))
    data.sendall(payload[sent_after:])
    data.close()
    assert control.reply(timeout=60).startswith("226")
    assert_pipeline_answered(control, TRANSFER_SIZE)
    control.close()
    assert sha256_bytes((server.home() / "up.bin").read_bytes()) == sha256_bytes(payload)


def test_commands_pipelined_while_list_waits_for_its_data_connection_are_answered(make_server):
    server = make_server(*STORAGE_ARGS)
    for i in range(20):
        (server.home() / f"entry-{i:02}").write_bytes(b"x")
    control = server.raw()
    r = control.cmd("PASV")
    assert r.startswith("227"), r
    numbers = r.split("(")[1].split(")")[0].split(",")
    port = int(numbers[4]) * 256 + int(numbers[5])
    control.send(b"LIST\r\n" + pipeline("entry-00"))
    # The server reads the control connection while it waits for the data connection.
    wait_for(lambda: server_has_read_everything(control.sock), 30, "the server to read the pipelined commands")
    data = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert control.reply(timeout=30).startswith("150")
    listing = recv_all(data).decode()
    assert all(f"entry-{i:02}" in listing for i in range(20)), listing
    assert control.reply(timeout=30).startswith("226")
    assert_pipeline_answered(control, 1)
    control.close()


# --------------------------------------------------------------------------
# 2. a small --pasv-ports range serves more transfers than it has ports
# --------------------------------------------------------------------------

def test_a_small_passive_range_serves_three_times_its_size_in_transfers(make_server):
    lo, hi = free_port_range(5)
    server = make_server("--pasv-ports", f"{lo}-{hi}", *STORAGE_ARGS)
    (server.home() / "small.txt").write_bytes(b"one of many")
    # The server ends each download's data connection first, so each port used is left in TIME_WAIT.
    with server.ftp() as ftp:
        for i in range(3 * 5):
            received = []
            assert ftp.retrbinary("RETR small.txt", received.append).startswith("226"), f"transfer {i + 1}"
            assert b"".join(received) == b"one of many"
            assert ftp.retrlines("LIST", lambda line: None).startswith("226"), f"listing {i + 1}"


# --------------------------------------------------------------------------
# 3. an emptied users file
# --------------------------------------------------------------------------

def reload_and_wait(server, outcome, count):
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_for(lambda: server.log_text().count(outcome) == count, 30, f"SIGHUP number {count} to end in {outcome!r}")


def test_an_emptied_users_file_is_refused_on_reload_and_logins_go_on(make_server):
    server = make_server(*STORAGE_ARGS)
    server.users_file.write_text("")
    reload_and_wait(server, "reload failed, keeping the previous configuration", 1)
    assert "no users in it" in server.log_text()
    with server.ftp() as ftp:
        assert ftp.pwd() == "/"
    # A file that says so is taken: everyone is locked out, on purpose.
    server.users_file.write_text("# maintenance: nobody logs in today\n# no users\n")
    reload_and_wait(server, "authentication configuration reloaded", 1)
    control = server.raw(login=False)
    assert control.cmd("USER alice").startswith("331")
    assert control.cmd(f"PASS {server.password()}").startswith("530")
    control.close()


def test_an_empty_users_file_stops_the_start(make_server):
    server = make_server(*STORAGE_ARGS, start=False)
    server.users_file.write_text("")
    started = run([str(BIN)] + server.args, timeout=30)
    assert started.returncode != 0
    assert b"no users in it" in started.stderr, started.stderr


# --------------------------------------------------------------------------
# 4. silent connections and stalled TLS handshakes
# --------------------------------------------------------------------------

WORKERS = 4
FIRST_COMMAND_TIMEOUT = 2


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


def wait_until_full(server):
    """Waits until every worker is taken: a new connection is turned away."""
    def turned_away():
        probe = RawFTP(HOST, server.port)
        probe.close()
        return probe.banner.startswith("421 Too many users")
    wait_for(turned_away, 30, "every worker to be taken", step=0.1)


def log_in_despite(server):
    """A real user logs in as soon as a worker is free again, within the first-command limit and a margin
    for a loaded machine (the login limit, 60 s, is what the silent connections used to hold them for)."""
    deadline = time.monotonic() + FIRST_COMMAND_TIMEOUT + 15
    while True:
        try:
            with server.ftp() as ftp:
                return ftp.pwd()
        except ftplib.error_temp as refused:
            assert str(refused).startswith("421 Too many users"), refused
            assert time.monotonic() < deadline, "every worker still held by a silent connection"
            time.sleep(0.1)


def closed(sock):
    """What the server sent before closing `sock`."""
    return recv_all(sock, timeout=30)


def test_silent_connections_lose_their_workers_and_a_real_user_logs_in(make_server):
    server = make_server("--max-clients", str(WORKERS), "--max-per-ip", "0",
                         "--first-command-timeout", str(FIRST_COMMAND_TIMEOUT), *STORAGE_ARGS)
    silent = [RawFTP(HOST, server.port) for _ in range(WORKERS)]
    wait_until_full(server)
    assert log_in_despite(server) == "/"
    for connection in silent:
        assert closed(connection.sock).startswith(b"421 Timeout (first command time limit reached)")
    wait_for(lambda: server.log_text().count("first command timeout, closing") == WORKERS, 30,
             "a log line per silent connection")


def test_stalled_tls_handshakes_lose_their_workers_and_a_real_user_logs_in(make_server, certs):
    ftps_port = free_port()
    server = make_server("--tls-cert", certs["cert"], "--tls-key", certs["key"], "--ftps-port", str(ftps_port),
                         "--max-clients", str(WORKERS), "--max-per-ip", "0",
                         "--first-command-timeout", str(FIRST_COMMAND_TIMEOUT), *STORAGE_ARGS)

    # Half the workers are held by implicit FTPS handshakes that never start, half by ones after AUTH TLS.
    implicit = [socket.create_connection((HOST, ftps_port), timeout=30) for _ in range(WORKERS // 2)]
    after_auth = []
    for _ in range(WORKERS // 2):
        control = RawFTP(HOST, server.port)
        assert control.cmd("AUTH TLS").startswith("234")
        after_auth.append(control)
    wait_until_full(server)
    assert log_in_despite(server) == "/"
    for sock in implicit + [control.sock for control in after_auth]:
        assert closed(sock) == b""
    wait_for(lambda: server.log_text().count("failed: TLS handshake took too long") == WORKERS, 30,
             "a log line per stalled handshake")


def test_auth_tls_does_not_restart_the_login_time_limit(make_server, certs):
    login_timeout = 6
    server = make_server("--tls-cert", certs["cert"], "--tls-key", certs["key"], "--login-timeout", str(login_timeout),
                         "--first-command-timeout", "30", *STORAGE_ARGS)
    control = RawFTP(HOST, server.port)
    connected = time.monotonic()
    assert control.cmd("NOOP").startswith("200")
    time.sleep(login_timeout - 1.5)
    # The handshake that never comes gets what is left of the login limit, not a new one.
    assert control.cmd("AUTH TLS").startswith("234")
    assert closed(control.sock) == b""
    held = time.monotonic() - connected
    assert held < login_timeout + 2.5, f"an unauthenticated client held its worker {held:.1f}s"


def test_one_address_gets_half_the_workers_by_default(make_server):
    server = make_server("--max-clients", str(WORKERS), *STORAGE_ARGS)
    mine = [server.ftp() for _ in range(WORKERS // 2)]
    refused = RawFTP(HOST, server.port)
    assert refused.banner == "421 Too many connections from your address."
    refused.close()
    # Another address still gets in.
    other = server.ftp(source="127.0.0.2")
    assert other.pwd() == "/"
    for ftp in mine + [other]:
        ftp.quit()


# --------------------------------------------------------------------------
# 5. EPSV with an address family the connection cannot serve
# --------------------------------------------------------------------------

def test_epsv_for_the_other_address_family_is_522_naming_the_one_served(make_server):
    server = make_server(*STORAGE_ARGS, v6=True)
    (server.home() / "both.txt").write_bytes(b"either family")
    for host, other, served in ((HOST, 2, 1), (HOST6, 1, 2)):
        control = RawFTP(host, server.port)
        control.login("alice", server.password())
        assert control.cmd(f"EPSV {other}") == f"522 Network protocol not supported, use ({served})"
        reply = control.cmd(f"EPSV {served}")
        assert reply.startswith("229"), reply
        port = int(reply.split("|||")[1].split("|")[0])
        data = socket.create_connection((host, port), timeout=10)
        assert control.cmd("RETR both.txt").startswith("150")
        assert recv_all(data) == b"either family"
        assert control.reply().startswith("226")
        control.close()


# --------------------------------------------------------------------------
# 6. no server paths or OpenSSL strings in replies
# --------------------------------------------------------------------------

def test_a_missing_home_is_logged_with_its_path_and_not_told_to_the_client(make_server):
    server = make_server(*STORAGE_ARGS)
    home = server.home("carol")
    if STORAGE == "hdfs":
        home.unlink()
    else:
        shutil.rmtree(home)
    control = server.raw(login=False)
    assert control.cmd("USER carol").startswith("331")
    reply = control.cmd(f"PASS {server.password('carol')}")
    assert reply.startswith("530 Cannot open your home directory: ") and str(home) not in reply, reply
    control.close()
    wait_for(lambda: f"home {home}: " in server.log_text(), 30, "the home's path to be logged")


def tls_session(server, certs):
    """ftplib over explicit FTPS as alice, with PROT P."""
    context = ssl.create_default_context(cafile=str(certs["cert"]))
    context.check_hostname = False
    ftp = ftplib.FTP_TLS(context=context, timeout=30)
    ftp.connect(HOST, server.port)
    ftp.auth()
    ftp.login("alice", server.password())
    ftp.prot_p()
    return ftp


def plain_data_connection(ftp):
    """A data connection that sends clear text where the TLS handshake should start."""
    _, port = ftplib.parse227(ftp.sendcmd("PASV"))
    data = socket.create_connection((HOST, port), timeout=30)
    data.sendall(b"this is not a TLS handshake\r\n")
    return data


def test_a_failed_data_handshake_is_425_without_openssl_internals(make_server, certs):
    server = make_server("--tls-cert", certs["cert"], "--tls-key", certs["key"], *STORAGE_ARGS)
    (server.home() / "secret.txt").write_bytes(b"private")
    with tls_session(server, certs) as ftp:
        data = plain_data_connection(ftp)
        assert ftp.sendcmd("RETR secret.txt").startswith("150")
        with pytest.raises(ftplib.error_temp) as refused:
            ftp.voidresp()
        assert str(refused.value) == "425 TLS handshake on the data connection failed."
        data.close()
        # The session goes on, and a real handshake works.
        received = []
        assert ftp.retrbinary("RETR secret.txt", received.append).startswith("226")
        assert b"".join(received) == b"private"
    assert "TLS handshake on the data connection failed: " in server.log_text()


# --------------------------------------------------------------------------
# 7. found by reading the code
# --------------------------------------------------------------------------

def test_stou_under_prot_p_creates_its_file_only_after_the_handshake(make_server, certs):
    server = make_server("--tls-cert", certs["cert"], "--tls-key", certs["key"], *STORAGE_ARGS)
    with tls_session(server, certs) as ftp:
        data = plain_data_connection(ftp)
        opening = ftp.sendcmd("STOU")
        assert opening.startswith("150 FILE: stou-"), opening
        with pytest.raises(ftplib.error_temp) as refused:
            ftp.voidresp()
        assert str(refused.value).startswith("425 TLS handshake on the data connection")
        data.close()
        assert listdir(server.home()) == [], "a failed STOU left a file"
        # A STOU whose handshake succeeds stores its file under the name it announced.
        ftp.voidcmd("TYPE I")
        connection, _ = ftp.ntransfercmd("STOU")
        connection.sendall(b"unique")
        connection.unwrap()
        connection.close()
        assert ftp.voidresp().startswith("226")
    [stored] = listdir(server.home())
    assert stored.startswith("stou-") and (server.home() / stored).read_bytes() == b"unique"


def test_sigterm_ends_a_wait_for_the_data_connection_within_the_grace_period(make_server):
    server = make_server("--shutdown-grace", "1", "--data-timeout", "120", *STORAGE_ARGS)
    (server.home() / "never.txt").write_bytes(b"never sent")
    control = server.raw()
    assert control.cmd("PASV").startswith("227")
    control.send("RETR never.txt\r\n")
    wait_for(lambda: server_has_read_everything(control.sock), 30, "the server to read RETR")
    server.proc.send_signal(signal.SIGTERM)
    assert control.reply(timeout=60) == "421 Server shutting down: no data connection, closing."
    assert server.proc.wait(timeout=60) == 0
    # Still waiting when the grace period ended, gone before the stopped transfers' deadline.
    assert server.log_text().count("session(s) still running") == 1, server.log_text()
    control.close()


@pytest.mark.parametrize("given, running", [
    ("", "glibc.malloc.tcache_count=0"),
    ("glibc.malloc.trim_threshold=262144", "glibc.malloc.trim_threshold=262144:glibc.malloc.tcache_count=0"),
    ("glibc.malloc.tcache_count=3", "glibc.malloc.tcache_count=3"),
])
def test_the_server_runs_without_per_thread_allocator_caches_unless_told_otherwise(make_server, given, running):
    """Pool workers never exit, so glibc's per-thread caches would keep what each one's last session
    freed: the server restarts itself in place with them off, adding to the operator's GLIBC_TUNABLES,
    keeps an operator's own tcache_count, and logs what it runs with."""
    server = make_server(env={"GLIBC_TUNABLES": given})
    server.wait_for_log(f"allocator: GLIBC_TUNABLES={re.escape(running)}$")
    assert server.ftp().pwd() == "/"
