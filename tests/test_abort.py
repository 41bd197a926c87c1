"""ABOR of a huge RETR while the client is not reading the data connection."""

import ftplib
import io
import re
import socket
import time

import pytest

from conftest import HOST, fill, recv_all

GiB = 1 << 30
# A correctness bound (the replies must come "promptly"), not a benchmark.
ABORT_BOUND = 10.0


@pytest.fixture(scope="module")
def huge(server):
    p = server.home() / "huge-1g.bin"
    fill(p, GiB)
    (server.home() / "small-after-abort.txt").write_bytes(b"after abort\n")
    return p.name


def _session_still_works(send_cmd, retr_small):
    assert send_cmd("NOOP").startswith("200")
    assert retr_small() == b"after abort\n"


def test_abor_raw_socket_slow_reader(server, huge):
    c = server.raw()
    d = None
    try:
        assert c.cmd("TYPE I").startswith("200")
        r = c.cmd("PASV")
        assert r.startswith("227"), r
        nums = [int(x) for x in re.search(r"(\d+,\d+,\d+,\d+,\d+,\d+)", r).group(1).split(",")]
        d = socket.socket()
        d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        d.settimeout(10)
        d.connect((".".join(map(str, nums[:4])), nums[4] * 256 + nums[5]))
        r = c.cmd(f"RETR {huge}")
        assert r[:3] in ("150", "125"), r
        got = 0
        while got < 8192:
            b = d.recv(4096)
            assert b, "data connection closed early"
            got += len(b)
        # stop reading: the server's writes now block on a full socket
        time.sleep(1.0)
        t0 = time.monotonic()
        c.send(b"ABOR\r\n")
        first = c.reply(timeout=ABORT_BOUND)
        assert first[:3] in ("426", "226"), f"first reply after ABOR: {first!r}"
        if first.startswith("426"):
            second = c.reply(timeout=ABORT_BOUND)
            assert second.startswith("226"), f"after 426 expected 226, got {second!r}"
        elapsed = time.monotonic() - t0
        assert elapsed < ABORT_BOUND, f"ABOR replies took {elapsed:.1f}s"
        d.close()
        d = None

        def retr_small():
            ds = c.pasv()
            r = c.cmd("RETR small-after-abort.txt")
            assert r[:3] in ("150", "125"), r
            data = recv_all(ds)
            assert c.reply().startswith("226")
            return data
        _session_still_works(c.cmd, retr_small)
    finally:
        if d is not None:
            d.close()
        c.close()


def test_abor_ftplib_abort_urgent(server, huge):
    """ftplib.FTP.abort() sends 'ABOR\\r\\n' with MSG_OOB (TCP urgent data)."""
    f = server.ftp()
    conn = None
    try:
        f.voidcmd("TYPE I")
        conn = f.transfercmd(f"RETR {huge}")
        conn.settimeout(10)
        got = 0
        while got < 16384:
            b = conn.recv(4096)
            assert b
            got += len(b)
        time.sleep(1.0)
        t0 = time.monotonic()
        old = f.sock.gettimeout()
        f.sock.settimeout(ABORT_BOUND)
        resp = f.abort()
        assert resp[:3] in ("426", "226"), resp
        if resp.startswith("426"):
            resp2 = f.getresp()
            assert resp2.startswith("226"), resp2
        elapsed = time.monotonic() - t0
        assert elapsed < ABORT_BOUND, f"ABOR replies took {elapsed:.1f}s"
        f.sock.settimeout(old)
        conn.close()
        conn = None

        def retr_small():
            buf = io.BytesIO()
            f.retrbinary("RETR small-after-abort.txt", buf.write)
            return buf.getvalue()
        _session_still_works(f.sendcmd, retr_small)
    finally:
        if conn is not None:
            conn.close()
        f.close()


def test_abor_active_mode(server, huge):
    c = server.raw()
    ls = socket.socket()
    d = None
    try:
        assert c.cmd("TYPE I").startswith("200")
        ls.bind((HOST, 0))
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ls.listen(1)
        ls.settimeout(10)
        p = ls.getsockname()[1]
        assert c.cmd(f"PORT 127,0,0,1,{p >> 8},{p & 255}").startswith("200")
        r = c.cmd(f"RETR {huge}")
        assert r[:3] in ("150", "125"), r
        d, _ = ls.accept()
        d.settimeout(10)
        assert d.recv(4096)
        time.sleep(1.0)
        t0 = time.monotonic()
        c.send(b"ABOR\r\n")
        first = c.reply(timeout=ABORT_BOUND)
        assert first[:3] in ("426", "226"), first
        if first.startswith("426"):
            assert c.reply(timeout=ABORT_BOUND).startswith("226")
        assert time.monotonic() - t0 < ABORT_BOUND
        assert c.cmd("NOOP").startswith("200")
    finally:
        if d is not None:
            d.close()
        ls.close()
        c.close()


def test_abor_without_transfer(server):
    c = server.raw()
    try:
        r = c.cmd("ABOR")
        assert r[:3] in ("225", "226"), r
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_stalled_reader_does_not_block_other_sessions(server, huge):
    """One client stalls a 1 GiB RETR; other sessions keep being served."""
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd(f"RETR {huge}")[:3] in ("150", "125")
        d.recv(4096)
        time.sleep(0.5)
        others = [server.ftp("carol") for _ in range(3)]
        try:
            (server.home("carol") / "other.txt").write_bytes(b"other\n")
            for f in others:
                assert f.sendcmd("NOOP").startswith("200")
                buf = io.BytesIO()
                f.retrbinary("RETR other.txt", buf.write)
                assert buf.getvalue() == b"other\n"
        finally:
            for f in others:
                f.close()
        c.send(b"ABOR\r\n")
        first = c.reply(timeout=ABORT_BOUND)
        assert first[:3] in ("426", "226"), first
        if first.startswith("426"):
            assert c.reply(timeout=ABORT_BOUND).startswith("226")
        d.close()
    finally:
        c.close()


def test_abor_while_server_waits_for_data_connection(server):
    """PASV, RETR, but the client never connects: ABOR must not wait for
    the data timeout."""
    (server.home() / "never.txt").write_bytes(b"never")
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        assert c.cmd("PASV").startswith("227")
        c.send(b"RETR never.txt\r\n")
        time.sleep(0.5)
        t0 = time.monotonic()
        c.send(b"ABOR\r\n")
        replies = []
        while True:
            try:
                r = c.reply(timeout=max(0.1, ABORT_BOUND - (time.monotonic() - t0)))
            except socket.timeout:
                raise AssertionError(
                    f"no 225/226 within {ABORT_BOUND:.0f}s of ABOR while RETR waits for the "
                    f"passive data connection (replies so far: {replies})") from None
            replies.append(r)
            if r[:3] in ("225", "226") or r == "":
                break
            assert r[:3] in ("150", "125", "425", "426"), replies
        assert replies[-1][:3] in ("225", "226"), replies
        assert time.monotonic() - t0 < ABORT_BOUND
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_stor_whose_data_connection_never_arrives_keeps_the_old_file(server):
    """STOR over an existing file, the data connection never comes, the client gives up with ABOR:
    the file it meant to replace must still hold its old content (nothing was uploaded)."""
    (server.home() / "keep.txt").write_bytes(b"old content")
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        assert c.cmd("PASV").startswith("227")
        c.send(b"STOR keep.txt\r\n")
        time.sleep(0.5)
        c.send(b"ABOR\r\n")
        replies = []
        while not replies or replies[-1][:3] not in ("225", "226"):
            replies.append(c.reply(timeout=ABORT_BOUND))
            assert replies[-1][:3] in ("150", "225", "226", "425", "426"), replies
        assert (server.home() / "keep.txt").read_bytes() == b"old content"
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_data_timeout_stalled_reader(make_server):
    """A reader that stops reading for longer than --data-timeout gets 426."""
    s = make_server("--data-timeout", "2")
    p = s.home() / "stall-1g.bin"
    fill(p, GiB)
    c = s.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd("RETR stall-1g.bin")[:3] in ("150", "125")
        assert d.recv(4096)
        r = c.reply(timeout=30)
        assert r.startswith("426"), f"stalled transfer ended with {r!r}"
        d.close()
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_data_timeout_stalled_writer(make_server):
    """An uploader that stops sending for longer than --data-timeout gets 426."""
    s = make_server("--data-timeout", "2")
    c = s.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd("STOR stall-up.bin")[:3] in ("150", "125")
        d.sendall(b"x" * 1000)
        r = c.reply(timeout=30)
        assert r.startswith("426"), f"stalled upload ended with {r!r}"
        d.close()
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_control_close_during_stalled_transfer_frees_slot(make_server):
    """The client drops the control connection while its RETR is stalled:
    the server must notice and free the session slot."""
    s = make_server("--max-clients", "2", "--max-per-ip", "0", "--data-timeout", "3")
    p = s.home() / "drop-1g.bin"
    fill(p, GiB)
    c = s.raw()
    assert c.cmd("TYPE I").startswith("200")
    d = c.pasv()
    assert c.cmd("RETR drop-1g.bin")[:3] in ("150", "125")
    d.recv(4096)
    c.close()  # control gone, data socket left open and unread
    try:
        deadline = time.monotonic() + 20
        sessions = []
        while len(sessions) < 2:
            try:
                sessions.append(s.ftp())
            except (OSError, EOFError, ftplib.Error) as e:  # 421 while the slot is held
                assert time.monotonic() < deadline, f"slot never freed: {e!r}"
                time.sleep(0.5)
        for f in sessions:
            assert f.sendcmd("NOOP").startswith("200")
            f.close()
    finally:
        d.close()


def test_abor_during_hash(server, huge):
    """HASH of 1 GiB (CRC32, the slowest algorithm here) is ended by ABOR: 426 for HASH, 226 for ABOR."""
    c = server.raw()
    try:
        assert c.cmd("OPTS HASH CRC32").startswith("200")
        c.send(f"HASH {huge}\r\n".encode())
        time.sleep(0.2)
        started = time.monotonic()
        c.send(b"ABOR\r\n")
        assert c.reply(timeout=ABORT_BOUND) == "426 HASH aborted."
        assert c.reply(timeout=ABORT_BOUND) == "226 ABOR successful."
        assert time.monotonic() - started < ABORT_BOUND
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()
