"""Operating hdfsftpd on a legacy host: make install, the init script, the daemon life cycle
(pid file, SIGHUP, SIGTERM with a grace period), privilege drop, the xferlog, and two instances
side by side."""

import contextlib
import ftplib
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, HOST, REPO, free_port, openssl_hash, require_tool, run, users_server, wait_for

XFERLOG_LINE = re.compile(
    r"^(?P<weekday>Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<time>\d\d:\d\d:\d\d) (?P<year>\d{4}) (?P<seconds>\d+) (?P<host>\S+) (?P<bytes>\d+) "
    r"(?P<filename>\S+) (?P<type>[ab]) (?P<special>[_CUT]) (?P<direction>[oid]) (?P<access>[agr]) "
    r"(?P<user>\S+) (?P<service>ftp) (?P<auth>[01]) (?P<authuser>\S+) (?P<status>[ci])$"
)


def parse_xferlog(path):
    lines = Path(path).read_text().splitlines()
    parsed = [XFERLOG_LINE.match(line) for line in lines]
    assert all(parsed), f"xferlog lines that do not parse: {[l for l, p in zip(lines, parsed) if not p]}"
    return [p.groupdict() for p in parsed]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped) counts as gone
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


# --------------------------------------------------------------------------------------------
# make install + init script
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    require_tool("make")
    dest = tmp_path_factory.mktemp("destdir")
    p = run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return dest


def init_env(dest, base):
    return dict(
        os.environ,
        DAEMON=str(dest / "usr/local/sbin/hdfsftpd"),
        CONFIG=str(dest / "etc/hdfsftpd/hdfsftpd.conf"),
        PIDFILE=str(base / "run/hdfsftpd.pid"),
        STOP_WAIT="20",
    )


def init(dest, env, action):
    script = dest / "etc/init.d/hdfsftpd"
    p = run(["sh", str(script), action], env=env, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode()


def test_install_puts_every_piece_in_place_and_keeps_existing_config(installed, tmp_path):
    for piece in ["usr/local/sbin/hdfsftpd", "etc/init.d/hdfsftpd", "usr/local/share/man/man8/hdfsftpd.8",
                  "etc/hdfsftpd/hdfsftpd.conf"]:
        assert (installed / piece).exists(), piece
    assert os.access(installed / "etc/init.d/hdfsftpd", os.X_OK)
    shipped = (installed / "etc/hdfsftpd/hdfsftpd.conf").read_text()
    assert re.search(r"^enable = no$", shipped, re.M), "the shipped config must start disabled"
    man = (installed / "usr/local/share/man/man8/hdfsftpd.8").read_text()
    assert ".TH HDFSFTPD 8" in man and "\\-\\-pid\\-file" in man

    # a second install into a tree whose config was edited keeps the edit; uninstall keeps it too
    dest = tmp_path / "dest"
    assert run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=REPO, timeout=600).returncode == 0
    conf = dest / "etc/hdfsftpd/hdfsftpd.conf"
    conf.write_text("enable = yes\n# edited by the operator\n")
    p = run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=REPO, timeout=600)
    assert p.returncode == 0 and "edited by the operator" in conf.read_text()
    assert run(["make", "-s", "uninstall", f"DESTDIR={dest}"], cwd=REPO, timeout=120).returncode == 0
    assert not (dest / "usr/local/sbin/hdfsftpd").exists()
    assert not (dest / "etc/init.d/hdfsftpd").exists()
    assert not (dest / "usr/local/share/man/man8/hdfsftpd.8").exists()
    assert conf.exists(), "uninstall must not remove an operator's config"


def test_init_script_says_when_the_service_is_disabled(installed, tmp_path):
    env = init_env(installed, tmp_path)
    rc, out = init(installed, env, "start")
    assert rc == 0 and "disabled" in out and "enable = yes" in out, out
    rc, out = init(installed, env, "status")
    assert rc == 3, out


def test_init_script_life_cycle(installed, tmp_path):
    port = free_port()
    srv = users_server(tmp_path / "srv", port=port)  # users file and homes; the init script starts it
    log_file, xfer_file = tmp_path / "hdfsftpd.log", tmp_path / "xfer.log"
    conf = installed / "etc/hdfsftpd/hdfsftpd.conf"
    original = conf.read_text()
    conf.write_text(
        f"enable = yes\nbind = {HOST}\nftp-port = {port}\nstorage = local\nlocal-root = {srv.root}\n"
        f"auth = users\nusers-file = {srv.users_file}\nlog-file = {log_file}\nxferlog = {xfer_file}\n"
        "shutdown-grace = 5\n"
    )
    env = init_env(installed, tmp_path)
    pid_file = Path(env["PIDFILE"])
    try:
        rc, out = init(installed, env, "start")
        assert rc == 0, out
        pid = int(pid_file.read_text())
        assert pid_alive(pid)
        rc, out = init(installed, env, "status")
        assert rc == 0 and str(pid) in out, out

        ftp = srv.ftp()
        ftp.storbinary("STOR init.bin", io.BytesIO(b"x" * 70000))
        rc, out = init(installed, env, "who")
        assert rc == 0 and len(out.splitlines()) == 2 and " alice " in out.splitlines()[1], out
        ftp.quit()
        assert (srv.home() / "init.bin").read_bytes() == b"x" * 70000

        # log rotation + a changed users file, then reload (SIGHUP)
        rotated = tmp_path / "hdfsftpd.log.1"
        log_file.rename(rotated)
        with open(srv.users_file, "a") as users:
            users.write(f"dave:{openssl_hash('dave-pw')}:/alice:r\n")
        rc, out = init(installed, env, "reload")
        assert rc == 0, out
        wait_for(lambda: log_file.exists() and "SIGHUP" in log_file.read_text(), 10, "log reopened after SIGHUP")
        ftp = srv.ftp("dave", "dave-pw")  # raises if the reload did not take effect
        assert "init.bin" in ftp.nlst()
        ftp.quit()
        assert "login dave" in log_file.read_text(), "sessions after SIGHUP must log to the new file"

        rc, out = init(installed, env, "stop")
        assert rc == 0, out
        assert not pid_file.exists()
        wait_for(lambda: not pid_alive(pid), 10, "daemon exit")
        rc, out = init(installed, env, "status")
        assert rc == 3, out
        assert parse_xferlog(xfer_file)[0]["filename"] == "/init.bin"
    finally:
        init(installed, env, "stop")
        conf.write_text(original)


# --------------------------------------------------------------------------------------------
# daemon life cycle through the binary
# --------------------------------------------------------------------------------------------

def daemon_args(srv, *extra):
    """The command line of `srv` (a users_server Daemon, not started), for the tests that run it
    themselves: --daemon forks, and a refused start never listens."""
    return [str(BIN), *srv.args, *extra]


def test_second_start_with_same_pid_file_is_refused(tmp_path):
    srv = users_server(tmp_path / "srv")
    pid_file = tmp_path / "hdfsftpd.pid"
    first = run(daemon_args(srv, "--daemon", "--pid-file", str(pid_file), "--log-file", str(tmp_path / "log")),
                timeout=30)
    assert first.returncode == 0, first.stderr
    pid = int(pid_file.read_text())
    try:
        # Another server on another port: the pid file alone must refuse it.
        other = users_server(tmp_path / "other")
        second = run(daemon_args(other, "--daemon", "--pid-file", str(pid_file)), timeout=30)
        assert second.returncode != 0
        message = second.stderr.decode()
        assert "already running" in message and str(pid) in message, message
        assert int(pid_file.read_text()) == pid, "the refused start must leave the pid file alone"
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), 15, "daemon exit")
    assert not pid_file.exists(), "the pid file is removed on exit"


def test_disabled_service_refuses_to_run(tmp_path):
    srv = users_server(tmp_path / "srv")
    p = run(daemon_args(srv, "--enable", "no"), timeout=30)
    assert p.returncode != 0 and b"enable = no" in p.stderr


@pytest.mark.parametrize("grace, completes", [(30, True), (1, False)], ids=["within-grace", "grace-exceeded"])
def test_sigterm_during_1gib_upload(tmp_path, grace, completes):
    require_tool("curl")
    srv = users_server(tmp_path / "srv", "--xferlog", tmp_path / "xfer.log", "--shutdown-grace", grace).start()
    source = tmp_path / "1g.bin"
    with open(source, "wb") as f:
        f.truncate(1 << 30)
    # ~4 s at this rate: SIGTERM lands in the middle of the upload.
    upload = subprocess.Popen(
        ["curl", "-sS", "--limit-rate", "250M", "-T", str(source), srv.url("big.bin")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (srv.home() / "big.bin").exists() and (srv.home() / "big.bin").stat().st_size > 0,
                   20, "the upload to start")
        srv.proc.send_signal(signal.SIGTERM)
        rc = srv.proc.wait(timeout=grace + 30)
        assert rc == 0, f"SIGTERM must end the server with 0, got {rc}\n{srv.log_tail()}"
        _, curl_err = upload.communicate(timeout=30)
    finally:
        upload.kill()
        srv.stop()
    stored = (srv.home() / "big.bin").stat().st_size
    [record] = parse_xferlog(tmp_path / "xfer.log")
    assert record["direction"] == "i" and record["filename"] == "/big.bin"
    assert int(record["bytes"]) == stored, "the xferlog line must say what was stored"
    if completes:
        assert upload.returncode == 0, curl_err
        assert record["status"] == "c" and stored == 1 << 30
    else:
        assert upload.returncode != 0, "the client must be told the upload did not complete"
        assert record["status"] == "i" and stored < 1 << 30
        assert "shutting down" in srv.log_text()


def test_xferlog_marks_anonymous_and_account_transfers(make_server, tmp_path):
    """The xferlog's access mode: `a` for an anonymous login, `r` for an account."""
    xfer = tmp_path / "xfer.log"
    srv = make_server("--anonymous", "--xferlog", xfer)
    (srv.home("anonymous") / "pub.txt").write_bytes(b"public")
    for user in ("anonymous", "alice"):
        ftp = srv.ftp(user)
        ftp.retrbinary("RETR pub.txt" if user == "anonymous" else "LIST", lambda data: None)
        if user == "alice":
            ftp.storbinary("STOR mine.txt", io.BytesIO(b"mine"))
        ftp.quit()
    wait_for(lambda: xfer.exists() and len(xfer.read_text().splitlines()) == 2, 10, "two xferlog lines")
    records = parse_xferlog(xfer)
    assert [(r["access"], r["user"], r["filename"]) for r in records] == [
        ("a", "anonymous", "/pub.txt"), ("r", "alice", "/mine.txt")], records


@pytest.fixture
def nobody_server():
    """make(port=None) -> a server set up to run as `nobody` (--user) on local storage, its storage
    reachable by that user and alice's home owned by it; started by the test. Stopped and removed
    afterwards. Yields (make, nobody's passwd entry)."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (CI runs as root)")
    nobody = pwd.getpwnam("nobody")
    # pytest's own temp tree is private to root; nobody needs to reach the storage root.
    base = Path(tempfile.mkdtemp(prefix="hdfsftpd-nobody-"))
    os.chmod(base, 0o755)
    made = []

    def make(port=None):
        srv = users_server(base / "srv", "--user", "nobody", port=port)
        os.chmod(base / "srv", 0o755)
        os.chmod(srv.root, 0o755)
        os.chown(srv.home(), nobody.pw_uid, nobody.pw_gid)
        os.chmod(srv.users_file, 0o644)
        made.append(srv)
        return srv
    try:
        yield make, nobody
    finally:
        for srv in made:
            srv.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_privilege_drop_after_binding_a_privileged_port(nobody_server):
    make, nobody = nobody_server
    srv = make(port=next(p for p in range(990, 1020) if _port_free(p))).start()
    status = Path(f"/proc/{srv.proc.pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
    assert set(map(int, uids)) == {nobody.pw_uid}, status
    ftp = srv.ftp()
    ftp.storbinary("STOR as-nobody.bin", io.BytesIO(b"n" * 1000))
    ftp.quit()
    assert (srv.home() / "as-nobody.bin").stat().st_uid == nobody.pw_uid


def test_unreadable_directory_is_refused_before_the_listing_starts(nobody_server):
    """A directory the server's user may enter but not read: LIST and MLSD get 550 with the reason
    before any data connection reply (not a 150 followed by a failed transfer), and the session goes on."""
    make, nobody = nobody_server
    srv = make()
    locked = srv.home() / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("x")
    os.chown(locked, nobody.pw_uid, nobody.pw_gid)
    os.chmod(locked, 0o311)  # enter, but not read
    srv.start()
    ftp = srv.ftp()
    for command in ("LIST locked", "MLSD locked", "NLST locked"):
        with pytest.raises(ftplib.error_perm) as refused:
            ftp.retrlines(command, lambda line: None)
        assert str(refused.value).startswith("550") and "ermission" in str(refused.value), (command, refused.value)
    assert ftp.size("locked/secret.txt") == 1  # entering still works
    assert ftp.voidcmd("NOOP").startswith("200")
    ftp.quit()


def test_a_full_filesystem_is_reported_as_such(tmp_path):
    """The user's home on a 1 MiB tmpfs: an upload that does not fit gets 452 naming the cause, the
    session goes on, and a file that fits still goes up whole."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root to mount a small tmpfs (CI runs as root)")
    srv = users_server(tmp_path / "srv")
    home = srv.home()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(home)], check=True, timeout=30)
    try:
        srv.start()
        try:
            ftp = srv.ftp()
            ftp.voidcmd("TYPE I")
            data = ftp.transfercmd("STOR too-big.bin")
            try:
                data.sendall(os.urandom(3 << 20))
            except OSError:  # the server stops reading when the disk is full, as vsftpd does
                pass
            data.close()
            with pytest.raises(ftplib.error_temp) as full:
                ftp.voidresp()
            assert str(full.value).startswith("452") and "No space left" in str(full.value), full.value
            assert ftp.voidcmd("NOOP").startswith("200")
            ftp.delete("too-big.bin")
            small = os.urandom(100_000)
            assert ftp.storbinary("STOR fits.bin", io.BytesIO(small)).startswith("226")
            ftp.quit()
            assert (home / "fits.bin").read_bytes() == small
            assert "No space left" in srv.log_text()
        finally:
            srv.stop()
    finally:
        subprocess.run(["umount", "-l", str(home)], check=True, timeout=30)


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def test_two_instances_side_by_side_share_storage(tmp_path):
    """Two nodes behind one name: same storage, each advertising its own passive address."""
    first = users_server(tmp_path / "shared", "--pasv-address", "127.0.0.1").start()
    second = users_server(tmp_path / "shared", "--pasv-address", "127.0.0.2", hosts=["127.0.0.2"])
    try:
        second.start()
        up = first.ftp()
        assert "(127,0,0,1," in up.sendcmd("PASV")
        up.storbinary("STOR node.bin", io.BytesIO(b"shared" * 1000))
        up.quit()
        down = second.ftp(host="127.0.0.2")
        assert "(127,0,0,2," in down.sendcmd("PASV")
        data = io.BytesIO()
        down.retrbinary("RETR node.bin", data.write)
        down.quit()
        assert data.getvalue() == b"shared" * 1000
    finally:
        first.stop()
        second.stop()



RSYSLOG_CONF = """global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log")
template(name="line" type="string"
         string="%syslogfacility-text%.%syslogseverity-text% %programname%[%procid%]:%msg%\\n")
*.* action(type="omfile" file="{dir}/messages" template="line")
"""


@pytest.fixture
def rsyslogd(tmp_path):
    """A real rsyslogd of the test's own: its socket at DIR/log, everything it receives in DIR/messages,
    one line each as 'facility.severity program[pid]: message'. Stopped by its pid."""
    require_tool("rsyslogd")
    directory = tmp_path / "rsyslog"
    directory.mkdir()
    (directory / "rsyslog.conf").write_text(RSYSLOG_CONF.format(dir=directory))
    daemon = subprocess.Popen(["rsyslogd", "-n", "-f", str(directory / "rsyslog.conf"), "-i", str(directory / "pid")],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (directory / "log").exists(), 10, "rsyslogd's socket")
        yield directory
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_log_and_xferlog_to_a_real_syslog_daemon(make_server, rsyslogd):
    messages = rsyslogd / "messages"
    srv = make_server("--log-file", "syslog", "--xferlog", "syslog", "--syslog-socket", rsyslogd / "log",
                      "--syslog-facility", "local3", start=False)
    srv.log_path = messages  # where the harness looks for the ready line
    srv.start()
    ftp = srv.ftp("alice")
    ftp.storbinary("STOR synced.txt", io.BytesIO(b"to syslog"))
    ftp.quit()
    with pytest.raises(ftplib.error_perm, match="^530"):
        srv.ftp("alice", password="wrong")
    pid = srv.proc.pid
    wait_for(lambda: "failed login for alice" in messages.read_text(), 10, "the failed login in the syslog")
    lines = messages.read_text().splitlines()
    tag = f"hdfsftpd[{pid}]: "
    assert f"local3.info {tag}hdfsftpd" in "\n".join(lines) and any(
        line.startswith(f"local3.info {tag}") and "login alice" in line for line in lines), lines
    assert any(line.startswith(f"local3.warning {tag}") and "failed login for alice" in line for line in lines), lines
    transfers = [line[len(f"local3.info {tag}"):] for line in lines
                 if line.startswith(f"local3.info {tag}") and XFERLOG_LINE.match(line[len(f"local3.info {tag}"):])]
    assert len(transfers) == 1, lines
    record = XFERLOG_LINE.match(transfers[0])
    assert (record["filename"], record["bytes"], record["direction"], record["status"]) == (
        "/synced.txt", "9", "i", "c"), transfers
    assert not (Path.cwd() / "syslog").exists(), "'syslog' was taken for a file name"


def test_who_lists_sessions_mid_transfer(make_server, tmp_path):
    pid_file = tmp_path / "hdfsftpd.pid"
    srv = make_server("--pid-file", pid_file)
    socket_path = Path(f"{pid_file}.sock")
    assert stat_mode(socket_path) == 0o600, "the status socket is for the daemon's user only"
    (srv.home() / "big.bin").write_bytes(os.urandom(32 << 20))
    idle = srv.ftp("carol")
    stranger = srv.raw(login=False)
    downloading = srv.raw()
    try:
        assert downloading.cmd("TYPE I").startswith("200")
        data = downloading.pasv()
        assert downloading.cmd("RETR big.bin").startswith("150")
        data.recv(65536)  # then stop reading: the transfer stalls with bytes sent
        text = run([str(BIN), "--who", "--pid-file", str(pid_file)], timeout=30, check=True).stdout.decode()
        header, *rows = text.splitlines()
        assert header.split()[:4] == ["ID", "CLIENT", "USER", "SINCE"], text
        assert len(rows) == 3, text
        assert any(" carol " in row and "NOOP" not in row for row in rows), text
        def who_json():
            out = run([str(BIN), "--who", "--json", "--status-socket", str(socket_path)], timeout=30, check=True)
            return {record["user"]: record for record in map(json.loads, out.stdout.decode().splitlines())}
        # The count is published per chunk: a blocked send shows its bytes once it returns.
        wait_for(lambda: who_json()["alice"]["bytes"] > 0, 10, "the download's bytes in --who")
        by_user = who_json()
        assert set(by_user) == {"alice", "carol", ""}, by_user
        transfer = by_user["alice"]
        assert (transfer["command"], transfer["path"]) == ("RETR", "big.bin"), transfer
        assert 65536 <= transfer["bytes"] < 32 << 20 and transfer["rate"] > 0, transfer
        assert transfer["client"].startswith(f"{HOST}:"), transfer
        assert by_user["carol"]["command"] == "PASS" and by_user["carol"]["path"] == "", by_user["carol"]
        assert by_user[""]["command"] == "" and by_user[""]["idle_seconds"] >= 0, by_user[""]
        data.close()
        downloading.send(b"ABOR\r\n")
    finally:
        for client in (idle, stranger, downloading):
            with contextlib.suppress(Exception):
                client.close()
    srv.stop()
    assert not socket_path.exists(), "the status socket outlived the daemon"
    refused = run([str(BIN), "--who", "--status-socket", str(socket_path)], timeout=30)
    assert refused.returncode == 1 and b"is it running?" in refused.stderr, refused


def stat_mode(path):
    return os.stat(path).st_mode & 0o777
