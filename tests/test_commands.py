"""Protocol commands: FEAT, SYST, HELP, STAT, TYPE/MODE/STRU, aliases, STOU,
SITE, EPSV ALL, read-only and anonymous users."""

import ftplib
import hashlib
import io
import os
import stat
import zlib

import pytest

from conftest import HOST, SHARED_CLUSTER, STORAGE, list_lines, listdir, lftp, parse_list, recv_all


def feat_names(resp):
    lines = resp.splitlines()
    assert lines[0].startswith("211-"), resp
    assert lines[-1].startswith("211"), resp
    return {ln.strip().split(" ", 1)[0].upper(): ln.strip() for ln in lines[1:-1] if ln.strip()}


def test_feat(ftp):
    feats = feat_names(ftp.sendcmd("FEAT"))
    for f in ("UTF8", "MLST", "SIZE", "MDTM", "MFMT", "EPSV", "EPRT", "PASV"):
        assert f in feats, f"FEAT lacks {f}: {sorted(feats)}"
    assert any(ln.upper().startswith("REST STREAM") for ln in feats.values()), feats
    mlst = feats["MLST"]
    for fact in ("type", "size", "modify", "perm", "unix.mode"):
        assert fact in mlst.lower(), f"MLST feature line lacks {fact}: {mlst!r}"
    assert "*" in mlst, f"MLST line marks no default facts: {mlst!r}"
    # Replication is a fact of HDFS only: local storage neither offers it nor accepts it in OPTS MLST.
    assert ("x.hdfs.replication" in mlst) == (STORAGE == "hdfs"), mlst
    if STORAGE != "hdfs":
        assert ftp.sendcmd("OPTS MLST size;x.hdfs.replication;") == "200 MLST OPTS size;"
    else:
        assert ftp.sendcmd("OPTS MLST size;x.hdfs.replication;") == "200 MLST OPTS size;x.hdfs.replication;"
    # RFC 3659 7.8: FEAT still lists every fact offered, marking the enabled ones.
    after = feat_names(ftp.sendcmd("FEAT"))["MLST"]
    assert after.split(" ", 1)[1].split(";")[:3] == ["type", "size*", "modify"], after
    assert after.count("*") == (2 if STORAGE == "hdfs" else 1) and "unix.mode;" in after, after


def test_feat_before_login(server):
    c = server.raw(login=False)
    try:
        feats = feat_names(c.cmd("FEAT"))
        assert "UTF8" in feats
    finally:
        c.close()


def test_syst_help_noop(ftp):
    assert ftp.sendcmd("SYST").startswith("215")
    help_ = ftp.sendcmd("HELP")
    assert help_.startswith("214"), help_
    assert "RETR" in help_.upper()
    retr = ftp.sendcmd("HELP retr")
    assert retr.startswith("214 RETR") and "download" in retr, retr
    assert ftp.sendcmd("NOOP").startswith("200")
    assert ftp.sendcmd("OPTS UTF8 ON").startswith("200")


def test_stat_no_arg(ftp):
    resp = ftp.sendcmd("STAT")
    lines = resp.splitlines()
    assert lines[0].startswith("211-"), resp
    assert lines[-1].startswith("211 "), resp
    assert len(lines) >= 3


def test_type_mode_stru_allo(ftp):
    assert ftp.sendcmd("TYPE A").startswith("200")
    assert ftp.sendcmd("TYPE I").startswith("200")
    assert ftp.sendcmd("TYPE A N").startswith("200")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("TYPE E")
    assert e.value.args[0][:3] in ("504", "501")
    assert ftp.sendcmd("MODE S").startswith("200")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("MODE B")
    assert e.value.args[0].startswith("504")
    assert ftp.sendcmd("STRU F").startswith("200")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("STRU R")
    assert e.value.args[0].startswith("504")
    assert ftp.sendcmd("ALLO 1000").startswith("202")


def test_aliases(ftp, server):
    home = server.home()
    assert ftp.sendcmd("XMKD xdir").startswith("257")
    assert (home / "xdir").is_dir()
    assert ftp.sendcmd("XCWD xdir").startswith("250")
    r = ftp.sendcmd("XPWD")
    assert r.startswith("257") and '"/xdir"' in r, r
    r = ftp.sendcmd("XCUP")
    assert r[:3] in ("200", "250"), r
    assert '"/"' in ftp.sendcmd("PWD")
    ftp.cwd("xdir")
    r = ftp.sendcmd("CDUP")
    assert r[:3] in ("200", "250"), r
    assert '"/"' in ftp.sendcmd("PWD")
    assert ftp.sendcmd("XRMD xdir").startswith("250")
    assert not (home / "xdir").exists()


def test_pwd_and_cwd_nested(ftp, server):
    (server.home() / "n1" / "n2").mkdir(parents=True, exist_ok=True)
    assert ftp.pwd() == "/"
    ftp.cwd("n1/n2")
    assert ftp.pwd() == "/n1/n2"
    ftp.cwd("..")
    assert ftp.pwd() == "/n1"
    ftp.cwd("/")
    assert ftp.pwd() == "/"


def test_stou_creates_unique_file(ftp, server):
    home = server.home()
    (home / "stou-dir").mkdir()
    ftp.cwd("stou-dir")
    ftp.voidcmd("TYPE I")
    names = []
    for payload in (b"first unique", b"second unique"):
        before = set(listdir(home / "stou-dir"))
        conn, _ = ftp.ntransfercmd("STOU")
        conn.sendall(payload)
        conn.close()
        final = ftp.voidresp()
        after = set(listdir(home / "stou-dir"))
        new = after - before
        assert len(new) == 1, (before, after)
        (name,) = new
        assert (home / "stou-dir" / name).read_bytes() == payload
        assert final.startswith("226"), final
        names.append(name)
    assert names[0] != names[1]


def test_stou_reply_names_file(server):
    home = server.home()
    (home / "stou2").mkdir()
    c = server.raw()
    try:
        c.cmd("CWD stou2")
        c.cmd("TYPE I")
        d = c.pasv()
        r150 = c.cmd("STOU")
        assert r150[:3] in ("150", "125"), r150
        d.sendall(b"payload")
        d.close()
        r226 = c.reply()
        assert r226.startswith("226"), r226
        (name,) = listdir(home / "stou2")
        assert name in r150 or name in r226, (name, r150, r226)
    finally:
        c.close()


def test_site_umask(server):
    f = server.ftp()
    try:
        assert f.sendcmd("SITE UMASK 077").startswith("200")
        f.storbinary("STOR umask.txt", io.BytesIO(b"secret"))
        assert stat.S_IMODE((server.home() / "umask.txt").stat().st_mode) == 0o600
        f.mkd("umask-dir")
        assert stat.S_IMODE((server.home() / "umask-dir").stat().st_mode) == 0o700
        assert f.sendcmd("SITE UMASK 022").startswith("200")
        f.storbinary("STOR umask2.txt", io.BytesIO(b"x"))
        assert stat.S_IMODE((server.home() / "umask2.txt").stat().st_mode) == 0o644
    finally:
        f.close()


def test_site_idle_and_help(ftp):
    assert ftp.sendcmd("SITE IDLE 60").startswith("200")
    r = ftp.sendcmd("SITE HELP")
    assert r.startswith("214"), r
    assert "CHMOD" in r.upper()
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("SITE NOSUCHTHING")
    assert e.value.args[0][:1] == "5"


def test_epsv_all(server):
    c = server.raw()
    try:
        r = c.cmd("EPSV ALL")
        assert r.startswith("2"), r
        assert c.cmd("PASV")[:1] == "5"
        assert c.cmd("PORT 127,0,0,1,200,10")[:1] == "5"
        assert c.cmd(f"EPRT |1|{HOST}|51210|")[:1] == "5"
        (server.home() / "epsv.txt").write_bytes(b"epsv works")
        assert c.cmd("TYPE I").startswith("200")
        d = c.epsv()
        assert c.cmd("RETR epsv.txt")[:3] in ("150", "125")
        assert recv_all(d) == b"epsv works"
        assert c.reply().startswith("226")
    finally:
        c.close()


def test_epsv_and_eprt_ipv4(server):
    (server.home() / "ep4.txt").write_bytes(b"ipv4 ext")
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.epsv()
        assert c.cmd("RETR ep4.txt")[:3] in ("150", "125")
        assert recv_all(d) == b"ipv4 ext"
        assert c.reply().startswith("226")
        import socket
        ls = socket.socket()
        ls.bind((HOST, 0))
        ls.listen(1)
        ls.settimeout(10)
        port = ls.getsockname()[1]
        assert c.cmd(f"EPRT |1|{HOST}|{port}|").startswith("200")
        assert c.cmd("RETR ep4.txt")[:3] in ("150", "125")
        conn, _ = ls.accept()
        ls.close()
        assert recv_all(conn) == b"ipv4 ext"
        assert c.reply().startswith("226")
    finally:
        c.close()


def test_commands_before_login_refused(server):
    c = server.raw(login=False)
    try:
        for cmd in ("PWD", "LIST", "RETR x", "STOR x", "CWD /", "MKD d"):
            r = c.cmd(cmd)
            assert r.startswith("530"), (cmd, r)
        assert c.cmd("NOOP")[:1] in ("2", "5")
    finally:
        c.close()


def test_quit(server):
    c = server.raw()
    try:
        assert c.cmd("QUIT").startswith("221")
        assert c.readline(timeout=5) is None
    finally:
        c.close()


# ---- read-only user ----------------------------------------------------------

def test_readonly_user(server, tmp_path):
    home = server.home("bob")
    (home / "ro.txt").write_bytes(b"read only data")
    (home / "ro-dir").mkdir(exist_ok=True)
    f = server.ftp("bob")
    try:
        assert "ro.txt" in f.nlst()
        assert "ro.txt" in parse_list(list_lines(f))
        buf = io.BytesIO()
        f.retrbinary("RETR ro.txt", buf.write)
        assert buf.getvalue() == b"read only data"
        for cmd in ("DELE ro.txt", "MKD newdir", "RNFR ro.txt", "RMD ro-dir",
                    "SITE CHMOD 777 ro.txt", "MFMT 20200102030405 ro.txt"):
            with pytest.raises(ftplib.error_perm) as e:
                f.sendcmd(cmd)
            assert e.value.args[0].startswith("550"), (cmd, e.value)
        for cmd in ("STOR new.txt", "APPE ro.txt", "STOR ro.txt"):
            with pytest.raises(ftplib.error_perm) as e:
                f.storbinary(cmd, io.BytesIO(b"nope"))
            assert e.value.args[0].startswith("550"), (cmd, e.value)
        assert f.sendcmd("NOOP").startswith("200")
    finally:
        f.close()
    assert sorted(listdir(home)) == ["ro-dir", "ro.txt"]
    assert (home / "ro.txt").read_bytes() == b"read only data"


def test_users_confined_to_their_home(server):
    (server.home("carol") / "carol-only.txt").write_bytes(b"carol")
    f = server.ftp("alice")
    try:
        assert "carol-only.txt" not in f.nlst("/")
        with pytest.raises(ftplib.error_perm):
            f.retrbinary("RETR /carol/carol-only.txt", lambda b: None)
        with pytest.raises(ftplib.error_perm):
            f.retrbinary("RETR ../carol/carol-only.txt", lambda b: None)
    finally:
        f.close()


def test_login_sequence_errors(server):
    c = server.raw(login=False)
    try:
        r = c.cmd("PASS whatever")
        assert r[:3] in ("503", "530"), r
        assert c.cmd("USER alice").startswith("331")
        assert c.cmd(f"PASS {server.password()}").startswith("230")
        assert c.cmd("PWD").startswith("257")
    finally:
        c.close()


def test_rein_or_user_switch_keeps_confinement(server):
    """Logging in again as another user on the same connection confines to the new home."""
    (server.home("bob") / "bob-file.txt").write_bytes(b"bob")
    c = server.raw()
    try:
        r = c.cmd("USER bob")
        if r.startswith("331"):
            r = c.cmd(f"PASS {server.password('bob')}")
        if r.startswith("230"):
            # now bob: read-only and bob's home
            assert c.cmd("MKD should-fail")[:1] == "5"
            assert c.cmd("SIZE bob-file.txt").startswith("213")
        else:
            assert r[:1] in ("5", "4"), r
    finally:
        c.close()
    assert not (server.home("alice") / "should-fail").exists()
    assert not (server.home("bob") / "should-fail").exists()


def test_pwd_quotes_doubled(ftp, server):
    """RFC 959 appendix II: a double quote in the directory name is doubled."""
    (server.home() / 'say"hi').mkdir()
    ftp.cwd('say"hi')
    r = ftp.sendcmd("PWD")
    assert r.startswith('257 "/say""hi"'), r
    r = ftp.sendcmd('MKD in"side')
    assert r.startswith('257 "/say""hi/in""side"') or r.startswith('257 "in""side"'), r
    assert (server.home() / 'say"hi' / 'in"side').is_dir()


def test_cwd_trailing_slash_and_dot(ftp, server):
    (server.home() / "slashdir" / "deeper").mkdir(parents=True)
    ftp.cwd("slashdir/")
    assert ftp.pwd() == "/slashdir"
    ftp.cwd("./deeper/.")
    assert ftp.pwd() == "/slashdir/deeper"
    ftp.cwd("//")
    assert ftp.pwd() == "/"


def test_mlsd_perm_facts_read_only_user(server):
    home = server.home("bob")
    (home / "perm-file.txt").write_bytes(b"p")
    (home / "perm-dir").mkdir(exist_ok=True)
    from conftest import mlsd
    f = server.ftp("bob")
    try:
        entries = mlsd(f)
    finally:
        f.close()
    fperm = entries["perm-file.txt"]["perm"]
    dperm = entries["perm-dir"]["perm"]
    assert "r" in fperm and not set(fperm) & set("wadfm"), fperm
    assert "e" in dperm and "l" in dperm and not set(dperm) & set("cmpfd"), dperm


def _hashes(data):
    return {"SHA-256": hashlib.sha256(data).hexdigest(), "SHA-1": hashlib.sha1(data).hexdigest(),
            "MD5": hashlib.md5(data).hexdigest(), "CRC32": f"{zlib.crc32(data):08x}"}


def test_hash_each_algorithm_matches_the_uploaded_bytes(ftp):
    data = os.urandom(3 * 1024 * 1024 + 17)
    ftp.storbinary("STOR hashed.bin", io.BytesIO(data))
    feats = feat_names(ftp.sendcmd("FEAT"))
    assert feats["HASH"] == "HASH SHA-256*;SHA-1;MD5;CRC32", feats
    assert ftp.sendcmd("OPTS HASH") == "200 SHA-256"
    for name, expected in _hashes(data).items():
        assert ftp.sendcmd(f"OPTS HASH {name.lower()}") == f"200 {name}"
        assert ftp.sendcmd("HASH hashed.bin") == f"213 {name} 0-{len(data)} {expected} hashed.bin"
    assert feat_names(ftp.sendcmd("FEAT"))["HASH"] == "HASH SHA-256;SHA-1;MD5;CRC32*"


def test_hash_through_lftp_quote(server, ftp):
    data = b"checked by lftp\n" * 1000
    ftp.storbinary("STOR lftp-hash.txt", io.BytesIO(data))
    out = lftp(server, "quote OPTS HASH MD5; quote HASH lftp-hash.txt").stdout.decode()
    assert f"213 MD5 0-{len(data)} {hashlib.md5(data).hexdigest()} lftp-hash.txt" in out, out


def test_hash_refusals(ftp):
    ftp.mkd("hash-dir")
    with pytest.raises(ftplib.error_perm, match="^504 Unknown algorithm"):
        ftp.sendcmd("OPTS HASH SHA-512")
    assert ftp.sendcmd("OPTS HASH") == "200 SHA-256", "a refused OPTS HASH changed the selection"
    with pytest.raises(ftplib.error_perm, match="^550 /no-such-file"):
        ftp.sendcmd("HASH no-such-file")
    with pytest.raises(ftplib.error_perm, match="^550 /hash-dir"):
        ftp.sendcmd("HASH hash-dir")
    with pytest.raises(ftplib.error_perm, match="^501"):
        ftp.sendcmd("HASH")
    with pytest.raises(ftplib.error_perm, match="^550"):
        ftp.sendcmd("HASH ../../etc/passwd")


def test_site_checksum_is_what_hdfs_dfs_checksum_prints(ftp, server):
    """SITE CHECKSUM: HDFS's own file checksum, as Hadoop's Java CLI (`hdfs dfs -checksum`) prints it; a
    clear 502 on local disk, which keeps none."""
    data = os.urandom(1_500_000)
    ftp.storbinary("STOR summed.bin", io.BytesIO(data))
    if STORAGE != "hdfs":
        with pytest.raises(ftplib.error_perm, match=r"^502 SITE CHECKSUM: /summed.bin: this storage keeps no file "
                                                    r"checksums \(HASH computes one on any storage\)$"):
            ftp.sendcmd("SITE CHECKSUM summed.bin")
        return
    reply = ftp.sendcmd("SITE CHECKSUM summed.bin")
    assert reply.startswith("213 /summed.bin\t"), reply
    _, algorithm, hex_bytes = reply[4:].split("\t")
    printed = SHARED_CLUSTER[0].fs_shell("-checksum", server.home() / "summed.bin").rstrip("\n")
    assert printed.split("\t")[1:] == [algorithm, hex_bytes], (printed, reply)
    assert algorithm.startswith("MD5-of-") and algorithm.endswith("CRC32C"), algorithm
    with pytest.raises(ftplib.error_perm, match="^550 /no-such.bin"):
        ftp.sendcmd("SITE CHECKSUM no-such.bin")
