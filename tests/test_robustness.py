"""Malformed input must get a 5xx reply without breaking the session or others."""

import io

import pytest

BAD_LINES = {
    "unknown-command": b"FOO BAR",
    "binary-garbage": b"\xff\xfe garbage",
    "high-bytes": b"\xc3\x28\xa0\xa1 \x80\x81",
    "empty-line": b"",
    "spaces-only": b"   ",
    "long-10000": b"A" * 10000,
    "long-stor-10000": b"STOR " + b"n" * 9995,
    "lowercase-unknown": b"xyzzy",
}


@pytest.mark.parametrize("which", list(BAD_LINES))
def test_malformed_line_gets_5xx_and_session_survives(server, which):
    (server.home() / "robust.txt").write_bytes(b"robust\n")
    bystander = server.ftp("carol")
    c = server.raw()
    try:
        r = c.cmd(BAD_LINES[which])
        assert r[:1] == "5", f"{which}: expected 5xx, got {r!r}"
        # no extra replies for a single bad line: the NOOP answer comes next
        r = c.cmd("NOOP")
        assert r.startswith("200"), f"{which}: NOOP after bad line got {r!r}"
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd("RETR robust.txt")[:3] in ("150", "125")
        from conftest import recv_all
        assert recv_all(d) == b"robust\n"
        assert c.reply().startswith("226")
        # a parallel session is unaffected
        assert bystander.sendcmd("NOOP").startswith("200")
        assert isinstance(bystander.nlst(), list)
    finally:
        c.close()
        bystander.close()


def test_lowercase_commands_accepted(server):
    c = server.raw()
    try:
        assert c.cmd("noop").startswith("200")
        assert c.cmd("pwd").startswith("257")
        assert c.cmd("Type i").startswith("200")
    finally:
        c.close()


def test_missing_arguments(server):
    c = server.raw()
    try:
        for cmd in ("RETR", "STOR", "MKD", "DELE", "RNFR", "SIZE", "MDTM",
                    "TYPE", "PORT", "REST", "REST abc", "MFMT", "SITE CHMOD"):
            r = c.cmd(cmd)
            assert r[:1] == "5", (cmd, r)
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def test_pipelined_commands(server):
    c = server.raw()
    try:
        c.send(b"NOOP\r\nPWD\r\nSYST\r\nNOOP\r\n")
        codes = [c.reply(timeout=5)[:3] for _ in range(4)]
        assert codes == ["200", "257", "215", "200"], codes
    finally:
        c.close()


def test_abrupt_disconnect_mid_upload_does_not_hurt_server(server):
    c = server.raw()
    d = c.pasv()
    assert c.cmd("STOR abrupt.bin")[:3] in ("150", "125")
    d.sendall(b"x" * 100000)
    d.close()
    c.close()
    f = server.ftp()
    try:
        assert f.sendcmd("NOOP").startswith("200")
        f.storbinary("STOR after-abrupt.txt", io.BytesIO(b"ok"))
        assert (server.home() / "after-abrupt.txt").read_bytes() == b"ok"
    finally:
        f.close()


def test_megabyte_line_does_not_hurt_server(server):
    """A 1 MiB line without a line break: the session may be refused or closed,
    but the server must stay up for others."""
    import socket
    bystander = server.ftp("carol")
    c = server.raw()
    try:
        try:
            c.send(b"NOOP " + b"A" * (1 << 20) + b"\r\n")
            r = c.reply(timeout=10)
        except (socket.timeout, OSError):
            r = ""
        assert r == "" or r[:1] == "5", r
    finally:
        c.close()
    try:
        assert bystander.sendcmd("NOOP").startswith("200")
    finally:
        bystander.close()
    f = server.ftp()
    assert f.sendcmd("NOOP").startswith("200")
    f.quit()


def test_overlong_names_refused_cleanly(server):
    c = server.raw()
    try:
        for line in ("MKD " + "n" * 300, "CWD " + "/".join(["d"] * 3000),
                     "SIZE " + "x" * 5000):
            r = c.cmd(line)
            assert r[:1] == "5", (line[:20], r)
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()
