"""Defects found by trying to break the server (issue 13), each pinned by the probe that found it.

Runs in both client suites: on local disk, and with HDFSFTPD_TEST_STORAGE=hdfs on the HDFS backend (there
with --atomic-uploads, where a lost upload leaves nothing at all)."""

import os
import signal
import socket

from conftest import BIN, MiB, STORAGE, free_port_range, make_payload, recv_all, run, sha256_bytes, wait_for

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


def test_commands_pipelined_during_stor_are_answered_after_it(make_server):
    server = make_server(*STORAGE_ARGS)
    payload = make_payload(TRANSFER_SIZE, seed=2)
    control = server.raw()
    assert control.cmd("TYPE I").startswith("200")
    data = control.pasv()
    assert control.cmd("STOR up.bin").startswith("150")
    half = TRANSFER_SIZE // 2
    data.sendall(payload[:half])
    control.send(pipeline("up.bin"))
    data.sendall(payload[half:])
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
