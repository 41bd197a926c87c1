"""Connection limits and timeouts."""

import contextlib
import ftplib
import io
import os
import signal
import socket
import threading
import time
from pathlib import Path

from conftest import BIN, HOST, REPO, RawFTP, curl, require_tool, run, wait_for

MiB = 1 << 20


def _connect_expect_421(port):
    """Open a control connection and return the first reply ('' on close)."""
    s = socket.create_connection((HOST, port), timeout=10)
    try:
        f = s.makefile("rb")
        try:
            line = f.readline()
        except (ConnectionResetError, OSError):
            line = b""
        return line.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        s.close()


def _closed(c, timeout=5):
    """True when the server has closed the control connection."""
    try:
        return c.readline(timeout=timeout) is None
    except socket.timeout:
        return False
    except OSError:
        return True


def test_max_clients_default_16(make_server):
    # All from one address: the per-address cap (half of the sessions by default) is lifted.
    s = make_server("--max-per-ip", "0")
    (s.home() / "cap.txt").write_bytes(b"still works")
    sessions = []
    try:
        for i in range(16):
            f = s.ftp("alice" if i % 2 else "carol")
            sessions.append(f)
        (s.home("carol") / "cap.txt").write_bytes(b"still works")
        r = _connect_expect_421(s.port)
        assert r.startswith("421"), f"17th connection got {r!r}"
        # the first 16 are unaffected and can still transfer
        for f in sessions:
            assert f.sendcmd("NOOP").startswith("200")
        for f in sessions:
            names = f.nlst()
            assert "cap.txt" in names
            buf = io.BytesIO()
            f.retrbinary("RETR cap.txt", buf.write)
            assert buf.getvalue() == b"still works"
        # after one leaves, a new client fits again
        sessions.pop().quit()
        deadline = time.monotonic() + 5
        while True:
            try:
                f = s.ftp("alice")
                sessions.append(f)
                break
            except ftplib.error_temp:
                assert time.monotonic() < deadline, "slot never freed after QUIT"
                time.sleep(0.2)
        assert f.sendcmd("NOOP").startswith("200")
    finally:
        for f in sessions:
            f.close()


def test_max_clients_flag(make_server):
    s = make_server("--max-clients", "3", "--max-per-ip", "0")
    sessions = [s.ftp() for _ in range(3)]
    try:
        assert _connect_expect_421(s.port).startswith("421")
        for f in sessions:
            assert f.sendcmd("NOOP").startswith("200")
    finally:
        for f in sessions:
            f.close()


def test_max_per_ip(make_server):
    s = make_server("--max-per-ip", "2")
    a = s.ftp("alice")
    b = s.ftp("carol")
    try:
        r = _connect_expect_421(s.port)
        assert r.startswith("421"), f"3rd connection from 127.0.0.1 got {r!r}"
        assert a.sendcmd("NOOP").startswith("200")
        assert b.sendcmd("NOOP").startswith("200")
        buf = io.BytesIO()
        (s.home() / "ip.txt").write_bytes(b"ip")
        a.retrbinary("RETR ip.txt", buf.write)
        assert buf.getvalue() == b"ip"
    finally:
        a.close()
        b.close()


def test_idle_timeout(make_server):
    s = make_server("--idle-timeout", "2")
    c = s.raw()
    try:
        assert c.cmd("NOOP").startswith("200")
        time.sleep(3.2)
        try:
            r = c.reply(timeout=10)
        except OSError:
            r = ""
        assert r.startswith("421"), f"expected 421 after idle timeout, got {r!r}"
        assert _closed(c), "connection still open after the idle-timeout 421"
    finally:
        c.close()
    line = s.wait_for_log(lambda l: "timeout" in l or "timed out" in l or "idle" in l)
    assert line, f"no log line mentions the idle timeout:\n{s.log_tail()}"


def test_idle_timeout_noop_keeps_alive(make_server):
    s = make_server("--idle-timeout", "2")
    c = s.raw()
    try:
        for _ in range(4):
            time.sleep(1)
            assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_login_timeout(make_server):
    s = make_server("--login-timeout", "2")
    c = RawFTP(HOST, s.port)
    try:
        assert c.banner.startswith("220")
        time.sleep(3.2)
        try:
            r = c.reply(timeout=10)
        except socket.timeout:
            raise AssertionError("connection neither answered 421 nor closed "
                                 "after the login timeout")
        except OSError:
            r = ""
        assert r == "" or r.startswith("421"), r
        assert _closed(c), "connection still open after the login timeout"
    finally:
        c.close()


def test_pasv_port_range(make_server):
    from conftest import free_port_range
    lo, hi = free_port_range(5)
    s = make_server("--pasv-ports", f"{lo}-{hi}")
    (s.home() / "pr.txt").write_bytes(b"range")
    f = s.ftp()
    try:
        for _ in range(6):
            resp = f.sendcmd("PASV")
            host, port = ftplib.parse227(resp)
            assert lo <= port <= hi, (lo, hi, resp)
            resp = f.sendcmd("EPSV")
            port = ftplib.parse229(resp, (HOST, s.port))[1]
            assert lo <= port <= hi, (lo, hi, resp)
        # a real transfer through the range still works
        f.sendcmd("NOOP")
        buf = io.BytesIO()
        f.retrbinary("RETR pr.txt", buf.write)
        assert buf.getvalue() == b"range"
    finally:
        f.close()


def test_pasv_address(make_server):
    s = make_server("--pasv-address", "127.0.0.9")
    c = s.raw()
    try:
        r = c.cmd("PASV")
        assert r.startswith("227"), r
        assert "127,0,0,9," in r, r
    finally:
        c.close()


def test_idle_timeout_does_not_cut_a_running_transfer(make_server):
    """A session busy with a (slow) transfer is not idle."""
    s = make_server("--idle-timeout", "2")
    c = s.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd("STOR slow-upload.bin")[:3] in ("150", "125")
        for _ in range(8):  # ~4 s of trickling, longer than the idle timeout
            d.sendall(b"s" * 1000)
            time.sleep(0.5)
        d.close()
        r = c.reply(timeout=10)
        assert r.startswith("226"), f"slow upload ended with {r!r}"
        assert (s.home() / "slow-upload.bin").read_bytes() == b"s" * 8000
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_data_timeout_no_connection(make_server):
    """PASV but the client never connects: the transfer fails, the session lives."""
    s = make_server("--data-timeout", "2")
    (s.home() / "dt.txt").write_bytes(b"dt")
    c = s.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        r = c.cmd("PASV")
        assert r.startswith("227"), r
        c.send(b"RETR dt.txt\r\n")
        first = c.reply(timeout=15)
        if first[:3] in ("150", "125"):
            first = c.reply(timeout=15)
        assert first[:3] in ("425", "426"), first
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_sigterm_stops_server(make_server):
    import os
    import signal
    s = make_server()
    f = s.ftp()
    os.kill(s.proc.pid, signal.SIGTERM)
    try:
        s.proc.wait(timeout=10)
    except Exception:
        raise AssertionError("server still running 10 s after SIGTERM")
    finally:
        f.close()


def test_sigterm_right_after_ready_is_a_clean_exit(make_server):
    """The signal handlers are in place before the server says it is ready: a SIGTERM at once is a
    shutdown with exit code 0, not a death by signal."""
    for _ in range(3):
        s = make_server()
        assert s.stop() == 0, s.log_tail()
        assert "shutting down" in s.log_text()


@contextlib.contextmanager
def unanswered_port():
    """A port whose listener never accepts and whose queue is full: the kernel drops further SYNs, so a
    connect to it hangs, as one to a client behind a firewall that drops them does."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex((HOST, port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in fillers + [listener]:
            sock.close()


def connecting_to(port):
    """How many sockets are in SYN_SENT towards HOST:port (Linux /proc/net/tcp)."""
    target = f"{socket.inet_aton(HOST)[::-1].hex().upper()}:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [row.split() for row in table.read().splitlines()[1:]]
    return sum(1 for row in rows if row[2] == target and row[3] == "02")


def start_active_retr(server, port):
    """A session whose RETR waits on an active connect that hangs; returns its control connection."""
    (server.home() / "never.txt").write_bytes(b"never sent")
    control = server.raw()
    assert control.cmd(f"PORT {HOST.replace('.', ',')},{port >> 8},{port & 255}").startswith("200")
    fillers = connecting_to(port)
    control.send("RETR never.txt\r\n")
    wait_for(lambda: connecting_to(port) > fillers, 30, "the server to be connecting to the PORT address")
    return control


def test_abor_ends_a_wait_for_an_active_data_connection(make_server):
    """ABOR is honoured while the server connects to the client's PORT address, as while it waits for
    a passive one: the RETR gets 425 and ABOR its 226 at once, not at --data-timeout."""
    server = make_server("--data-timeout", "120")
    with unanswered_port() as port:
        control = start_active_retr(server, port)
        control.send("ABOR\r\n")
        assert control.reply(timeout=30) == "425 No data connection: aborted by client."
        assert control.reply(timeout=30).startswith("226")
        assert control.cmd("NOOP").startswith("200"), "the session goes on"
        control.close()


def test_sigterm_ends_a_wait_for_an_active_data_connection_within_the_grace_period(make_server):
    server = make_server("--shutdown-grace", "1", "--data-timeout", "120")
    with unanswered_port() as port:
        control = start_active_retr(server, port)
        server.proc.send_signal(signal.SIGTERM)
        assert control.reply(timeout=60) == "421 Server shutting down: no data connection, closing."
        assert server.proc.wait(timeout=60) == 0
        control.close()


def test_no_slot_leak_after_many_sessions(make_server):
    """Sessions that QUIT, drop the connection, or fail to log in all free their slot."""
    s = make_server("--max-clients", "4", "--max-per-ip", "0", "--login-fail-delay", "0.05")
    for i in range(40):
        kind = i % 4
        if kind == 0:
            f = s.ftp()
            f.quit()
        elif kind == 1:
            f = s.ftp()
            f.sock.close()  # abrupt close, no QUIT
            f.close()
        elif kind == 2:
            c = RawFTP(HOST, s.port)  # connect and vanish before login
            c.close()
        else:
            f = ftplib.FTP(timeout=30)
            f.connect(HOST, s.port)
            try:
                f.login("alice", "wrong")
            except ftplib.error_perm:
                pass
            f.close()
    # all 4 slots must be usable again (allow a moment for the server to notice)
    deadline = time.monotonic() + 10
    sessions = []
    try:
        while len(sessions) < 4:
            try:
                sessions.append(s.ftp())
            except (ftplib.error_temp, EOFError, OSError):
                assert time.monotonic() < deadline, \
                    f"only {len(sessions)} of 4 slots free after 40 closed sessions"
                time.sleep(0.2)
        for f in sessions:
            assert f.sendcmd("NOOP").startswith("200")
    finally:
        for f in sessions:
            f.close()


def test_max_per_ip_slot_released(make_server):
    s = make_server("--max-per-ip", "1")
    a = s.ftp()
    assert _connect_expect_421(s.port).startswith("421")
    a.quit()
    deadline = time.monotonic() + 5
    while True:
        try:
            b = s.ftp()
            break
        except (ftplib.error_temp, EOFError, OSError):
            assert time.monotonic() < deadline, "per-IP slot not released after QUIT"
            time.sleep(0.2)
    assert b.sendcmd("NOOP").startswith("200")
    b.quit()


def test_concurrent_transfers(make_server):
    """16 sessions uploading and downloading at the same time."""
    import threading
    from conftest import make_payload
    s = make_server("--max-per-ip", "0")
    n = 16
    payloads = [make_payload(2 * 1024 * 1024 + i, seed=100 + i) for i in range(n)]
    errors = []

    def worker(i):
        try:
            f = s.ftp("alice" if i % 2 else "carol", timeout=60)
            try:
                f.voidcmd("TYPE I")
                f.storbinary(f"STOR conc-{i}.bin", io.BytesIO(payloads[i]))
                buf = io.BytesIO()
                f.retrbinary(f"RETR conc-{i}.bin", buf.write)
                if buf.getvalue() != payloads[i]:
                    errors.append(f"session {i}: downloaded bytes differ")
            finally:
                f.quit()
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(f"session {i}: {e!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a transfer thread hung"
    assert not errors, errors
    for i in range(n):
        home = s.home("alice" if i % 2 else "carol")
        assert (home / f"conc-{i}.bin").read_bytes() == payloads[i]


def test_pasv_port_range_exhausted(make_server):
    """More passive requests than ports: a clean 425, and the others still work."""
    from conftest import free_port_range
    lo, hi = free_port_range(1)
    s = make_server("--pasv-ports", f"{lo}-{hi}")
    (s.home() / "one.txt").write_bytes(b"one port")
    a = s.raw()
    b = s.raw()
    try:
        assert a.cmd("TYPE I").startswith("200")
        d = a.pasv()
        r = b.cmd("PASV")
        assert r[:1] in ("4", "5"), f"PASV with no free port in the range: {r!r}"
        assert b.cmd("NOOP").startswith("200")
        assert a.cmd("RETR one.txt")[:3] in ("150", "125")
        from conftest import recv_all
        assert recv_all(d) == b"one port"
        assert a.reply().startswith("226")
    finally:
        a.close()
        b.close()


def test_max_per_user_refuses_one_more_login_of_that_user_only(make_server):
    s = make_server("--max-per-user", "2", "--max-per-ip", "0")
    first, second = s.ftp("alice"), s.ftp("alice")
    carol = s.ftp("carol")
    try:
        third = s.raw(login=False)
        assert third.cmd("USER alice").startswith("331")
        reply = third.cmd(f"PASS {s.password('alice')}")
        assert reply == "421 Too many sessions for alice (at most 2); try again later.", reply
        assert _closed(third)
        assert "login alice: refused, 2 sessions already (--max-per-user)" in s.log_text()
        for f in (first, second, carol):
            assert f.sendcmd("NOOP").startswith("200")
        assert s.ftp("carol").sendcmd("NOOP").startswith("200"), "another user's logins are not counted"
        first.quit()
        wait_for(lambda: _login_works(s, "alice"), 10, "a slot given back at QUIT to be reusable")
    finally:
        for f in (second, carol):
            with contextlib.suppress(Exception):
                f.close()


def _login_works(server, user):
    try:
        server.ftp(user).quit()
        return True
    except ftplib.error_temp:
        return False



# --------------------------------------------------------------------------
# transfer rate limits
# --------------------------------------------------------------------------

MAVEN = Path(os.environ.get("HDFSFTPD_CACHE", Path.home() / ".cache" / "hdfsftpd")) / "maven"
COMMONS_NET = [MAVEN / "commons-net-3.13.0.jar", MAVEN / "commons-io-2.21.0.jar"]


def _curl_download_rate(server, user, name):
    """curl's average download speed in bytes/s, for the whole transfer."""
    out = curl("-u", f"{user}:{server.password(user)}", f"ftp://{HOST}:{server.port}/{name}", "-o", "/dev/null",
               "-w", "%{speed_download}")
    return float(out.stdout.decode())


def _commons_net_upload_rate(server, user, local, remote):
    """Apache commons-net's FTPClient.storeFile, timed from STOR to its reply: bytes/s."""
    require_tool("java")
    result = run(["java", "-cp", ":".join(map(str, COMMONS_NET)), str(REPO / "tests/java/TimedUpload.java"), HOST,
                  str(server.port), user, server.password(user), str(local), remote], timeout=120, check=True)
    code, size, millis = result.stdout.decode().split()
    assert code == "226", result.stdout
    return int(size) / (int(millis) / 1000)


def test_rate_limits_hold_a_10_second_download_and_upload_within_5_percent(make_server, tmp_path):
    s = make_server("--max-download-rate", "2M", "--max-upload-rate", "1M")
    (s.home() / "limited.bin").write_bytes(os.urandom(20 * MiB))
    down = _curl_download_rate(s, "alice", "limited.bin")
    assert abs(down - 2 * MiB) <= 0.05 * 2 * MiB, f"download at {down:.0f} B/s, limit {2 * MiB}"
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(10 * MiB))
    up = _commons_net_upload_rate(s, "alice", local, "uploaded.bin")
    assert abs(up - MiB) <= 0.05 * MiB, f"upload at {up:.0f} B/s, limit {MiB}"
    assert (s.home() / "uploaded.bin").read_bytes() == local.read_bytes()


def test_limited_sessions_do_not_slow_an_unlimited_one(make_server):
    """--user-rate limits alice only; two of her 10 s downloads at 1 MiB/s run beside carol's unlimited one."""
    s = make_server("--user-rate", "alice:1M:0", "--max-per-ip", "0")
    (s.home() / "ten.bin").write_bytes(os.urandom(10 * MiB))
    (s.home("carol") / "big.bin").write_bytes(os.urandom(64 * MiB))
    rates = {}
    limited = [threading.Thread(target=lambda i=i: rates.__setitem__(i, _curl_download_rate(s, "alice", "ten.bin")))
               for i in range(2)]
    for thread in limited:
        thread.start()
    time.sleep(0.5)
    unlimited = _curl_download_rate(s, "carol", "big.bin")
    for thread in limited:
        thread.join(60)
    for rate in rates.values():
        assert abs(rate - MiB) <= 0.05 * MiB, f"alice's download at {rate:.0f} B/s, limit {MiB}"
    assert len(rates) == 2, rates
    assert unlimited > 10 * MiB, f"carol, unlimited, moved only {unlimited:.0f} B/s beside two limited sessions"


def test_bad_rates_are_refused_at_start(make_server):
    for flag, value in (("--max-download-rate", "fast"), ("--max-upload-rate", "1.5M"), ("--user-rate", "alice:1M")):
        s = make_server(flag, value, start=False)
        started = run([str(BIN)] + s.args, timeout=30)
        assert started.returncode == 2 and flag.lstrip("-") in started.stderr.decode(), started.stderr
