"""Authentication: wrong passwords, fail delay, max login fails, anonymous."""

import ftplib
import io
import socket
import time

import pytest

from conftest import HOST, curl, lftp


def _is_login_fail_line(user):
    words = ("fail", "denied", "invalid", "incorrect", "wrong", "bad", "reject", "530")

    def pred(line):
        return user in line and any(w in line for w in words)
    return pred


def test_good_login_all_users(server):
    for user in ("alice", "bob", "carol"):
        f = server.ftp(user)
        assert f.pwd() == "/"
        f.quit()


def test_wrong_password_delayed_530_and_logged(make_server):
    s = make_server("--login-fail-delay", "0.5")
    f = ftplib.FTP(timeout=30)
    f.connect(HOST, s.port)
    t0 = time.monotonic()
    with pytest.raises(ftplib.error_perm) as e:
        f.login("alice", "not-the-password")
    elapsed = time.monotonic() - t0
    assert e.value.args[0].startswith("530"), e.value
    assert elapsed >= 0.4, f"530 came after only {elapsed:.3f}s"
    f.close()
    assert s.wait_for_log(_is_login_fail_line("alice")), \
        f"no log line about alice's failed login:\n{s.log_tail()}"


def test_unknown_user_delayed_530(make_server):
    s = make_server("--login-fail-delay", "0.5")
    c = s.raw(login=False)
    try:
        r = c.cmd("USER mallory")
        assert r[:3] in ("331", "530"), r
        t0 = time.monotonic()
        if r.startswith("331"):
            r = c.cmd("PASS whatever")
        assert r.startswith("530"), r
        # unknown users are not distinguishable by timing shortcuts either
        assert time.monotonic() - t0 >= 0.4
    finally:
        c.close()


def test_max_login_fails_then_421(make_server):
    s = make_server("--login-fail-delay", "0.2", "--max-login-fails", "3")
    c = s.raw(login=False)
    try:
        for i in range(3):
            r = c.cmd("USER alice")
            assert r.startswith("331"), f"attempt {i + 1}: {r!r}"
            r = c.cmd(f"PASS wrong{i}")
            if i < 2:
                assert r.startswith("530"), f"attempt {i + 1}: {r!r}"
            else:
                assert r[:3] in ("530", "421"), f"attempt {i + 1}: {r!r}"
        if r.startswith("530"):
            # the 421 follows the 3rd 530 (or the connection just closes)
            try:
                r = c.reply(timeout=3)
            except socket.timeout:
                try:
                    r = c.cmd("USER alice")
                except OSError:
                    r = ""
        assert r == "" or r.startswith("421"), r
        # and the connection is closed after that
        try:
            rest = c.readline(timeout=5)
        except socket.timeout:
            rest = "<still open>"
        except OSError:
            rest = None
        assert rest is None, f"connection not closed after 421, got {rest!r}"
    finally:
        c.close()
    assert s.wait_for_log(_is_login_fail_line("alice")), s.log_tail()
    # the server itself is fine: a new connection can log in
    f = s.ftp("alice")
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_anonymous_disabled_by_default(server):
    f = ftplib.FTP(timeout=30)
    f.connect(HOST, server.port)
    with pytest.raises(ftplib.error_perm) as e:
        f.login("anonymous", "guest@example.org")
    assert e.value.args[0].startswith("530")
    f.close()


def test_anonymous_enabled_read_only(make_server, tmp_path):
    s = make_server("--anonymous", "--login-fail-delay", "0.1")
    (s.home("anonymous") / "welcome.txt").write_bytes(b"public file\n")
    f = ftplib.FTP(timeout=30)
    f.connect(HOST, s.port)
    assert f.login("anonymous", "guest@example.org").startswith("230")
    assert "welcome.txt" in f.nlst()
    buf = io.BytesIO()
    f.retrbinary("RETR welcome.txt", buf.write)
    assert buf.getvalue() == b"public file\n"
    with pytest.raises(ftplib.error_perm) as e:
        f.storbinary("STOR upload.txt", io.BytesIO(b"x"))
    assert e.value.args[0].startswith("550")
    with pytest.raises(ftplib.error_perm) as e:
        f.sendcmd("DELE welcome.txt")
    assert e.value.args[0].startswith("550")
    with pytest.raises(ftplib.error_perm) as e:
        f.sendcmd("MKD d")
    assert e.value.args[0].startswith("550")
    f.quit()
    # any password works
    f = ftplib.FTP(timeout=30)
    f.connect(HOST, s.port)
    assert f.login("anonymous", "").startswith("230")
    f.quit()
    # curl and lftp default to anonymous login
    p = curl(f"ftp://{HOST}:{s.port}/welcome.txt")
    assert p.stdout == b"public file\n"
    out = tmp_path / "w.txt"
    from conftest import run, require_tool, LFTP_PRELUDE
    require_tool("lftp")
    run(["lftp", "-c", LFTP_PRELUDE + f"open -p {s.port} {HOST}; get welcome.txt -o {out}"],
        timeout=60, check=True, stdin=None)
    assert out.read_bytes() == b"public file\n"
    assert not (s.home("anonymous") / "upload.txt").exists()


def test_curl_and_lftp_wrong_password_fail(make_server, tmp_path):
    s = make_server("--login-fail-delay", "0.1")
    p = curl(f"ftp://alice:wrong@{HOST}:{s.port}/", check=False)
    assert p.returncode == 67, (p.returncode, p.stderr)  # CURLE_LOGIN_DENIED
    s.users["alice"] = "wrong"
    p = lftp(s, "ls", check=False, timeout=60)
    assert p.returncode != 0


@pytest.mark.parametrize("level", ["info", "debug", "trace"])
def test_passwords_never_logged(make_server, level):
    s = make_server("--login-fail-delay", "0.1", log_level=level)
    f = s.ftp("alice")
    f.quit()
    f = ftplib.FTP(timeout=30)
    f.connect(HOST, s.port)
    with pytest.raises(ftplib.error_perm):
        f.login("alice", "Wr0ng-Secret-XYZ")
    f.close()
    s.wait_for_log(_is_login_fail_line("alice"))
    log = s.log_text()
    assert "alice" in log
    assert s.password("alice") not in log, f"password logged at --log-level {level}"
    assert "Wr0ng-Secret-XYZ" not in log, f"wrong password logged at --log-level {level}"


def test_a_users_file_entry_named_ftp_is_refused(tmp_path):
    """`ftp` is the anonymous login's other name: an account of that name could never log in, so the
    users file that has one is refused with the line named."""
    from conftest import BIN, run, write_users_file
    users = write_users_file(tmp_path / "users", {"alice": ("pw", "/", "rw"), "ftp": ("pw", "/", "rw")})
    p = run([str(BIN), "--check-config", "--local-root", str(tmp_path), "--users-file", str(users)], timeout=30)
    assert p.returncode == 2, p
    assert b"line 3" in p.stderr and b"anonymous login's other name" in p.stderr, p.stderr
