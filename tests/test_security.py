"""Path traversal, symlink escapes, command injection and PORT restrictions."""

import ftplib
import io
import os
import re
import socket

import pytest

from conftest import HOST, recv_all

PASSWD_MARK = b"root:"


@pytest.fixture(scope="module")
def escapes(server):
    home = server.home("carol")
    for name, target in (("escape", "/etc"), ("passwd-link", "/etc/passwd"),
                         ("up-link", "..")):
        p = home / name
        if not p.is_symlink():
            os.symlink(target, p)
    (home / "inside.txt").write_bytes(b"inside\n")
    (server.home("alice") / "alice-private.txt").write_bytes(b"alice private\n")
    return home


def _retr(f, path):
    buf = io.BytesIO()
    f.retrbinary(f"RETR {path}", buf.write)
    return buf.getvalue()


@pytest.mark.parametrize("path", [
    "../../etc/passwd",
    "/../../../etc/passwd",
    "../../../../../../../../etc/passwd",
    "..\\..\\..\\etc\\passwd",
    "/etc/passwd",
    "escape/passwd",
    "/escape/passwd",
    "passwd-link",
    "up-link/alice/alice-private.txt",
    "/up-link/alice/alice-private.txt",
])
def test_retr_outside_root_refused(server, escapes, path):
    f = server.ftp("carol")
    try:
        f.voidcmd("TYPE I")
        with pytest.raises(ftplib.error_perm) as e:
            data = _retr(f, path)
            assert PASSWD_MARK not in data, f"{path!r} served /etc/passwd"
            assert b"private" not in data, f"{path!r} served another user's file"
        assert e.value.args[0].startswith("550"), (path, e.value)
        assert f.sendcmd("NOOP").startswith("200")
    finally:
        f.close()


def test_cwd_dotdot_stays_at_root(server):
    f = server.ftp("carol")
    try:
        for target in ("/..", "..", "../..", "/../../..", "/./../."):
            try:
                f.cwd(target)
            except ftplib.error_perm as e:
                assert e.args[0].startswith("550")
            assert f.pwd() == "/", target
        names = f.nlst()
        assert "etc" not in names and "alice" not in names
    finally:
        f.close()


def test_symlink_dir_escape_refused(server, escapes):
    f = server.ftp("carol")
    try:
        with pytest.raises(ftplib.error_perm) as e:
            f.cwd("escape")
        assert e.value.args[0].startswith("550")
        assert f.pwd() == "/"
        for cmd in ("LIST escape", "NLST escape", "MLSD escape", "LIST escape/",
                    "LIST up-link", "NLST up-link/alice"):
            lines = []
            with pytest.raises(ftplib.error_perm) as e:
                f.retrlines(cmd, lines.append)
            assert e.value.args[0].startswith("550"), (cmd, e.value)
            assert not any("passwd" in ln or "shadow" in ln or "private" in ln
                           for ln in lines), (cmd, lines)
        for cmd in ("SIZE passwd-link", "MDTM passwd-link", "SIZE escape/passwd",
                    "MLST escape/passwd", "STAT escape"):
            with pytest.raises(ftplib.error_perm) as e:
                resp = f.sendcmd(cmd)
                assert "root:" not in resp and "passwd" not in resp, (cmd, resp)
            assert e.value.args[0][:1] == "5", (cmd, e.value)
    finally:
        f.close()


def test_no_writes_through_symlink_escape(server, escapes, tmp_path):
    f = server.ftp("carol")
    try:
        for cmd in ("STOR escape/hdfsftpd-test-escape.txt", "APPE passwd-link"):
            with pytest.raises(ftplib.error_perm) as e:
                f.storbinary(cmd, io.BytesIO(b"pwned"))
            assert e.value.args[0].startswith("550"), (cmd, e.value)
        for cmd in ("MKD escape/hdfsftpd-test-dir", "DELE passwd-link/x",
                    "SITE CHMOD 777 passwd-link", "MFMT 20000101000000 passwd-link"):
            with pytest.raises(ftplib.error_perm):
                f.sendcmd(cmd)
    finally:
        f.close()
    assert not os.path.exists("/etc/hdfsftpd-test-escape.txt")
    assert not os.path.exists("/etc/hdfsftpd-test-dir")
    assert b"pwned" not in open("/etc/passwd", "rb").read()


def test_symlinks_that_stay_inside_the_home_are_followed(server):
    """Links whose target stays in the home (relative, absolute, chained, through `..`) serve what they
    name; a dangling link out of the home is refused like a link out; a loop is an error, not a hang."""
    tree = server.home("carol") / "linked"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "deep.txt").write_bytes(b"deep\n")
    links = {"rel": "a/b/deep.txt", "abs-dir": str(tree / "a"), "chain": "rel", "a/up": "../a/b/deep.txt",
             "dangling-out": "/etc/hdfsftpd-test-dangling", "ping": "pong", "pong": "ping"}
    for name, target in links.items():
        os.symlink(target, tree / name)
    f = server.ftp("carol")
    try:
        f.voidcmd("TYPE I")
        for path in ("linked/rel", "linked/chain", "linked/a/up", "linked/abs-dir/b/deep.txt"):
            assert _retr(f, path) == b"deep\n", path
        assert f.sendcmd("SIZE linked/abs-dir/up") == "213 5"
        listing = []
        f.retrlines("LIST linked", listing.append)
        rel = [line for line in listing if line.endswith(" rel")]
        assert rel and rel[0].startswith("-") and rel[0].split()[4] == "5", listing
        f.cwd("linked/abs-dir/b")
        assert f.pwd() == "/linked/abs-dir/b"
        f.storbinary("STOR new.txt", io.BytesIO(b"through a link\n"))
        assert (tree / "a" / "b" / "new.txt").read_bytes() == b"through a link\n"
        f.cwd("/linked")
        with pytest.raises(ftplib.error_perm) as e:
            f.storbinary("STOR dangling-out", io.BytesIO(b"pwned"))
        assert e.value.args[0].startswith("550") and "outside your root" in e.value.args[0], e.value
        with pytest.raises(ftplib.error_temp) as e:
            _retr(f, "ping")
        assert e.value.args[0].startswith("451") and "Too many levels of symbolic links" in e.value.args[0]
        assert f.sendcmd("NOOP").startswith("200")
    finally:
        f.close()
    assert not os.path.lexists("/etc/hdfsftpd-test-dangling")


def test_stor_dotdot_stays_inside_home(server):
    f = server.ftp("carol")
    root = server.root
    try:
        try:
            f.storbinary("STOR ../../dotdot-upload.txt", io.BytesIO(b"x"))
        except ftplib.error_perm as e:
            assert e.args[0].startswith("550")
    finally:
        f.close()
    assert not (root / "dotdot-upload.txt").exists()
    assert not (root.parent / "dotdot-upload.txt").exists()


def test_crlf_injection_not_echoed(server):
    c = server.raw()
    try:
        c.send(b"MKD x\r227 fake\r\n")
        replies = [c.reply(timeout=5)]
        c.send(b"NOOP\r\n")
        for _ in range(5):
            r = c.reply(timeout=5)
            replies.append(r)
            if r.startswith("200"):
                break
        lines = "\n".join(replies).splitlines()
        assert not any(ln.startswith("227 fake") or ln.startswith("227") for ln in lines), lines
        assert replies[0][:1] in ("4", "5"), replies
        assert replies[-1].startswith("200"), replies
    finally:
        c.close()
    assert not any("\r" in n for n in os.listdir(server.home()))


def test_stor_name_with_cr_refused(server):
    c = server.raw()
    try:
        d = c.pasv()
        c.send(b"STOR a\rb\r\n")
        r = c.reply(timeout=5)
        assert r[:1] in ("4", "5"), r
        d.close()
        assert c.cmd("NOOP").startswith("200")
        c.send(b"RNFR a\nb\r\n")
        r = c.reply(timeout=5)
        assert r[:1] in ("4", "5"), r
        # drain anything else, then check the session still answers
        c.send(b"NOOP\r\n")
        for _ in range(3):
            r = c.reply(timeout=5)
            if r.startswith("200"):
                break
        assert r.startswith("200"), r
    finally:
        c.close()
    assert not any("\r" in n or "\n" in n for n in os.listdir(server.home()))


def test_nul_in_name_refused(server):
    c = server.raw()
    try:
        for line in (b"MKD a\x00b", b"CWD a\x00b", b"DELE x\x00y", b"SIZE a\x00b"):
            r = c.cmd(line)
            assert r[:1] == "5", (line, r)
        d = c.pasv()
        r = c.cmd(b"STOR nul\x00name.txt")
        assert r[:1] == "5", r
        d.close()
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()
    home = server.home()
    assert not (home / "a").exists(), "MKD a\\0b created 'a'"
    assert not any(n.startswith("nul") for n in os.listdir(home))


# ---- PORT restrictions ------------------------------------------------------

def test_port_foreign_address_refused(server):
    c = server.raw()
    try:
        r = c.cmd("PORT 127,0,0,2,200,10")
        assert r[:1] == "5", f"PORT to a foreign address accepted: {r!r}"
        r = c.cmd("EPRT |1|127.0.0.2|51210|")
        assert r[:1] == "5", f"EPRT to a foreign address accepted: {r!r}"
        for addr in ("PORT 127,0,0,1,200,10", "EPRT |1|127.0.0.1|51210|"):
            assert c.cmd(addr).startswith("200"), addr  # own address is fine
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()
    assert server.wait_for_log(lambda l: "127.0.0.2" in l), \
        f"refused PORT not logged:\n{server.log_tail()}"


def test_port_privileged_refused(server):
    c = server.raw()
    try:
        r = c.cmd("PORT 127,0,0,1,0,21")
        assert r[:1] == "5", f"PORT to port 21 accepted: {r!r}"
        r = c.cmd("EPRT |1|127.0.0.1|22|")
        assert r[:1] == "5", f"EPRT to port 22 accepted: {r!r}"
        # the unspecified address stands for the client: still no privileged port
        r = c.cmd("PORT 0,0,0,0,0,22")
        assert r[:1] == "5", f"PORT 0.0.0.0:22 accepted: {r!r}"
        r = c.cmd("EPRT |1|0.0.0.0|25|")
        assert r[:1] == "5", f"EPRT 0.0.0.0:25 accepted: {r!r}"
        for bad in ("PORT 1,2,3", "PORT 127,0,0,1,300,1", "PORT a,b,c,d,e,f",
                    "EPRT |9|127.0.0.1|5000|", "EPRT garbage"):
            r = c.cmd(bad)
            assert r[:1] == "5", (bad, r)
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_port_foreign_allowed_with_flag(make_server):
    s = make_server("--allow-foreign-port")
    c = s.raw()
    try:
        r = c.cmd("PORT 127,0,0,2,200,10")
        assert r.startswith("200"), r
        # and a normal PORT transfer still works
        (s.home() / "pf.txt").write_bytes(b"foreign ok")
        assert c.cmd("TYPE I").startswith("200")
        ls = socket.socket()
        ls.bind((HOST, 0))
        ls.listen(1)
        ls.settimeout(10)
        p = ls.getsockname()[1]
        assert c.cmd(f"PORT 127,0,0,1,{p >> 8},{p & 255}").startswith("200")
        assert c.cmd("RETR pf.txt")[:3] in ("150", "125")
        d, _ = ls.accept()
        ls.close()
        assert recv_all(d) == b"foreign ok"
        assert c.reply().startswith("226")
    finally:
        c.close()


def test_rename_cannot_escape(server, escapes):
    home = server.home("carol")
    (home / "mv-me.txt").write_bytes(b"move me")
    f = server.ftp("carol")
    try:
        for target in ("../../moved-out.txt", "/../moved-out.txt", "escape/moved-out.txt",
                       "up-link/alice/moved-out.txt", "up-link/moved-out.txt"):
            try:
                f.sendcmd("RNFR mv-me.txt")
                f.sendcmd(f"RNTO {target}")
            except ftplib.error_perm as e:
                assert e.args[0].startswith("550"), (target, e)
            # wherever it went, it must still be inside carol's home
            assert not (server.root / "moved-out.txt").exists(), target
            assert not (server.root.parent / "moved-out.txt").exists(), target
            assert not (server.home("alice") / "moved-out.txt").exists(), target
            assert not os.path.exists("/etc/moved-out.txt"), target
            if not (home / "mv-me.txt").exists():
                moved = home / "moved-out.txt"
                assert moved.exists(), f"RNTO {target} moved the file somewhere else"
                moved.rename(home / "mv-me.txt")
        # renaming the escape link itself somewhere is harmless, but renaming
        # something *from* outside must fail
        with pytest.raises(ftplib.error_perm):
            f.sendcmd("RNFR up-link/alice/alice-private.txt")
            f.sendcmd("RNTO stolen.txt")
        assert (server.home("alice") / "alice-private.txt").exists()
    finally:
        f.close()


def test_no_writes_into_other_users_home(server, escapes):
    alice = server.home("alice")
    f = server.ftp("carol")
    try:
        for cmd in ("STOR up-link/alice/planted.txt", "APPE up-link/alice/alice-private.txt"):
            with pytest.raises(ftplib.error_perm):
                f.storbinary(cmd, io.BytesIO(b"planted"))
        for cmd in ("MKD up-link/alice/planted-dir", "DELE up-link/alice/alice-private.txt",
                    "SITE CHMOD 777 up-link/alice/alice-private.txt"):
            with pytest.raises(ftplib.error_perm):
                f.sendcmd(cmd)
    finally:
        f.close()
    assert not (alice / "planted.txt").exists()
    assert not (alice / "planted-dir").exists()
    assert (alice / "alice-private.txt").read_bytes() == b"alice private\n"
    assert (alice / "alice-private.txt").stat().st_mode & 0o777 != 0o777


def test_pasv_connection_from_other_address_gets_no_data(server):
    """PASV port theft: a connection from another address must not get the file."""
    (server.home() / "stealme.txt").write_bytes(b"confidential " * 100)
    c = server.raw()
    thief = None
    try:
        assert c.cmd("TYPE I").startswith("200")
        r = c.cmd("PASV")
        assert r.startswith("227"), r
        n = [int(x) for x in re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", r).groups()]
        port = n[4] * 256 + n[5]
        thief = socket.socket()
        thief.bind(("127.0.0.2", 0))
        thief.settimeout(5)
        try:
            thief.connect((HOST, port))
        except OSError:
            thief.close()
            thief = None
        c.send(b"RETR stealme.txt\r\n")
        stolen = b""
        if thief is not None:
            try:
                while True:
                    b = thief.recv(65536)
                    if not b:
                        break
                    stolen += b
            except OSError:
                pass
        assert b"confidential" not in stolen, "data was sent to a connection from 127.0.0.2"
    finally:
        if thief is not None:
            thief.close()
        c.close()


def test_port_to_closed_port_fails_cleanly(server):
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there now
    (server.home() / "closed.txt").write_bytes(b"x")
    c = server.raw()
    try:
        assert c.cmd(f"PORT 127,0,0,1,{port >> 8},{port & 255}").startswith("200")
        r = c.cmd("RETR closed.txt")
        if r[:3] in ("150", "125"):
            r = c.reply(timeout=30)
        assert r[:3] in ("425", "426"), r
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_home_directory_cannot_be_removed_or_renamed(server):
    c = server.raw("carol")
    try:
        for cmd in ("RMD /", "RMD .", "RMD ..", "XRMD /", "DELE /", "RNFR /", "RNFR ..",
                    "RNFR /.."):
            r = c.cmd(cmd)
            assert r[:1] == "5", (cmd, r)
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()
    assert server.home("carol").is_dir()


def test_site_chmod_cannot_set_setuid_or_setgid(server):
    """Hardening: the server process may run as root; a user must not be able
    to make a setuid/setgid file on the host with SITE CHMOD."""
    f = server.ftp("carol")
    p = server.home("carol") / "suid.sh"
    try:
        f.storbinary("STOR suid.sh", io.BytesIO(b"#!/bin/sh\nid\n"))
        for mode in ("4755", "2755", "6777"):
            try:
                f.sendcmd(f"SITE CHMOD {mode} suid.sh")
            except ftplib.error_perm as e:
                assert e.args[0][:1] == "5"
            m = p.stat().st_mode
            assert not m & 0o6000, f"SITE CHMOD {mode} left mode {oct(m)} on disk"
    finally:
        f.close()
