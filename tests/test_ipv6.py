"""EPSV / EPRT over IPv6 loopback (::1)."""

import ftplib
import io
import socket

import pytest

from conftest import HOST, HOST6, curl, lftp, make_payload, recv_all, users_server


@pytest.fixture(scope="module")
def server6(tmp_path_factory):
    """A users_server listening on 127.0.0.1 and ::1, shared by this module."""
    daemon = users_server(tmp_path_factory.mktemp("srv6"), v6=True).start()
    yield daemon
    daemon.stop()


def _ftp6(s, user="alice"):
    f = ftplib.FTP(timeout=30)
    f.connect(HOST6, s.port)
    f.login(user, s.password(user))
    return f


def test_ipv6_epsv_ftplib(server6):
    data = make_payload(300_000, seed=6)
    f = _ftp6(server6)
    try:
        assert f.af == socket.AF_INET6
        # ftplib uses EPSV on an IPv6 control connection
        f.storbinary("STOR v6-epsv.bin", io.BytesIO(data))
        assert (server6.home() / "v6-epsv.bin").read_bytes() == data
        buf = io.BytesIO()
        f.retrbinary("RETR v6-epsv.bin", buf.write)
        assert buf.getvalue() == data
        assert "v6-epsv.bin" in f.nlst()
    finally:
        f.close()


def test_ipv6_eprt_ftplib(server6):
    data = make_payload(300_000, seed=7)
    f = _ftp6(server6)
    try:
        f.set_pasv(False)  # ftplib sends EPRT |2|::1|port| on IPv6
        f.storbinary("STOR v6-eprt.bin", io.BytesIO(data))
        assert (server6.home() / "v6-eprt.bin").read_bytes() == data
        buf = io.BytesIO()
        f.retrbinary("RETR v6-eprt.bin", buf.write)
        assert buf.getvalue() == data
    finally:
        f.close()


def test_ipv6_raw_epsv_reply_format(server6):
    from conftest import RawFTP
    c = RawFTP(HOST6, server6.port)
    try:
        c.login("alice", server6.password())
        r = c.cmd("EPSV")
        assert r.startswith("229") and "(|||" in r, r
        r = c.cmd("EPSV 2")
        assert r.startswith("229"), r
        # PASV cannot describe an IPv6 address
        r = c.cmd("PASV")
        assert r[:1] in ("5", "2"), r
        # EPRT with an IPv4 address from an IPv6 control connection is foreign
        r = c.cmd("EPRT |1|127.0.0.1|50000|")
        assert r[:1] == "5", r
        (server6.home() / "v6raw.txt").write_bytes(b"v6 raw")
        assert c.cmd("TYPE I").startswith("200")
        d = c.epsv()
        assert c.cmd("RETR v6raw.txt")[:3] in ("150", "125")
        assert recv_all(d) == b"v6 raw"
        assert c.reply().startswith("226")
    finally:
        c.close()


def test_ipv6_curl_epsv_and_eprt(server6, tmp_path):
    data = make_payload(100_000, seed=8)
    src = tmp_path / "s.bin"
    src.write_bytes(data)
    url = server6.url("v6-curl.bin", host=HOST6)
    curl("-g", "-T", src, url)
    assert (server6.home() / "v6-curl.bin").read_bytes() == data
    out = tmp_path / "o.bin"
    curl("-g", "-o", out, url)
    assert out.read_bytes() == data
    out2 = tmp_path / "o2.bin"
    curl("-g", "-P", HOST6, "-o", out2, url)  # active: EPRT |2|::1|...|
    assert out2.read_bytes() == data


def test_ipv6_lftp(server6, tmp_path):
    data = make_payload(50_000, seed=9)
    src = tmp_path / "s.bin"
    src.write_bytes(data)
    lftp(server6, f"put {src} -o v6-lftp.bin", host=HOST6)
    assert (server6.home() / "v6-lftp.bin").read_bytes() == data
    out = tmp_path / "o.bin"
    lftp(server6, f"get v6-lftp.bin -o {out}", host=HOST6)
    assert out.read_bytes() == data
    # active mode: lftp 4.9 announces the unspecified address,
    # EPRT |2|::|port|, which the server takes to mean the client's address
    out.unlink()
    lftp(server6, f"get v6-lftp.bin -o {out}", host=HOST6,
         settings="set ftp:passive-mode off;")
    assert out.read_bytes() == data


def test_ipv4_still_served_when_both_bound(server6):
    f = ftplib.FTP(timeout=30)
    f.connect(HOST, server6.port)
    f.login("alice", server6.password())
    assert f.sendcmd("NOOP").startswith("200")
    f.close()
