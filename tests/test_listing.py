"""Listings (LIST/NLST/MLSD/MLST/STAT), file management and metadata commands."""

import calendar
import ftplib
import io
import os
import re
import stat
import time

import pytest

from conftest import (HdfsPath, curl, lftp, list_lines, local_storage_only, mlsd, parse_list, parse_mlsx)


@pytest.fixture
def tree(server, request):
    """A fresh directory in alice's home with known contents."""
    name = "tree-" + re.sub(r"\W", "_", request.node.name)[:60]
    d = server.home() / name
    d.mkdir()
    (d / "a.txt").write_bytes(b"hello\n")
    (d / "empty.bin").write_bytes(b"")
    (d / "big.bin").write_bytes(b"z" * 123457)
    (d / "sub").mkdir()
    (d / "sub" / "inner.txt").write_bytes(b"inner")
    return name, d


def test_list_names_sizes_types(ftp, tree):
    name, d = tree
    entries = parse_list(list_lines(ftp, name))
    assert set(entries) >= {"a.txt", "empty.bin", "big.bin", "sub"}
    assert "." not in entries or entries["."]["perm"][0] == "d"
    assert entries["a.txt"]["size"] == 6
    assert entries["empty.bin"]["size"] == 0
    assert entries["big.bin"]["size"] == 123457
    assert entries["a.txt"]["perm"][0] == "-"
    assert entries["sub"]["perm"][0] == "d"


def test_list_cwd_and_list_file(ftp, tree):
    name, d = tree
    ftp.cwd(name)
    entries = parse_list(list_lines(ftp))
    assert "a.txt" in entries and "sub" in entries
    # LIST of a single file lists just that file
    one = parse_list(list_lines(ftp, "big.bin"))
    assert len(one) == 1
    (only,) = one.values()
    assert only["size"] == 123457


def test_nlst(ftp, tree):
    name, d = tree
    names = ftp.nlst(name)
    base = sorted(n.rsplit("/", 1)[-1] for n in names)
    assert base == sorted(["a.txt", "empty.bin", "big.bin", "sub"])
    ftp.cwd(name)
    assert sorted(ftp.nlst()) == sorted(["a.txt", "empty.bin", "big.bin", "sub"])


def test_mlsd_facts(ftp, tree):
    name, d = tree
    entries = mlsd(ftp, name)
    entries = {k: v for k, v in entries.items() if v.get("type") not in ("cdir", "pdir")}
    assert set(entries) == {"a.txt", "empty.bin", "big.bin", "sub"}
    for n, facts in entries.items():
        for fact in ("type", "modify", "perm", "unix.mode", "unix.owner", "unix.group"):
            assert fact in facts, f"MLSD entry {n} lacks fact {fact}: {facts}"
        assert re.fullmatch(r"\d{14}(\.\d+)?", facts["modify"]), facts["modify"]
        assert re.fullmatch(r"0?[0-7]{3,4}", facts["unix.mode"]), facts["unix.mode"]
    assert entries["a.txt"]["type"] == "file"
    assert entries["sub"]["type"] == "dir"
    assert int(entries["a.txt"]["size"]) == 6
    assert int(entries["big.bin"]["size"]) == 123457
    assert int(entries["empty.bin"]["size"]) == 0
    # modify is the file's mtime in UTC
    mt = time.gmtime((d / "big.bin").stat().st_mtime)
    assert entries["big.bin"]["modify"][:14] == time.strftime("%Y%m%d%H%M%S", mt)
    # unix.mode matches the disk
    mode = stat.S_IMODE((d / "a.txt").stat().st_mode)
    assert int(entries["a.txt"]["unix.mode"], 8) == mode
    # perm facts: a writable file can be read/written, a dir can be listed/entered
    assert "r" in entries["a.txt"]["perm"] and "w" in entries["a.txt"]["perm"]
    assert "e" in entries["sub"]["perm"] and "l" in entries["sub"]["perm"]


def test_mlst_single(ftp, tree):
    name, d = tree
    resp = ftp.sendcmd(f"MLST {name}/big.bin")
    lines = resp.splitlines()
    assert lines[0].startswith("250-"), resp
    assert lines[-1].startswith("250"), resp
    entry = [ln for ln in lines[1:-1] if ln.startswith(" ")]
    assert len(entry) == 1, resp
    n, facts = parse_mlsx(entry[0])
    assert n.endswith("big.bin")
    assert facts["type"] == "file" and int(facts["size"]) == 123457


def test_stat_path_listing(ftp, tree):
    name, d = tree
    resp = ftp.sendcmd(f"STAT {name}")
    lines = resp.splitlines()
    assert lines[0].startswith("213-"), f"STAT path should be a 213 multi-line reply: {resp!r}"
    assert lines[-1].startswith("213 "), resp
    body = "\n".join(lines[1:-1])
    assert "a.txt" in body and "big.bin" in body and "sub" in body
    assert "123457" in body


def test_mkd_rmd_dele_rename(ftp, server):
    home = server.home()
    resp = ftp.sendcmd("MKD newdir")
    assert resp.startswith("257") and "newdir" in resp
    assert (home / "newdir").is_dir()
    ftp.storbinary("STOR newdir/f.txt", io.BytesIO(b"data"))
    assert (home / "newdir" / "f.txt").read_bytes() == b"data"

    # RMD of a non-empty dir fails
    with pytest.raises(ftplib.error_perm) as e:
        ftp.rmd("newdir")
    assert e.value.args[0].startswith("550")

    assert ftp.sendcmd("RNFR newdir/f.txt").startswith("350")
    assert ftp.sendcmd("RNTO newdir/g.txt").startswith("250")
    assert not (home / "newdir" / "f.txt").exists()
    assert (home / "newdir" / "g.txt").read_bytes() == b"data"

    # rename a directory
    ftp.rename("newdir", "renamed")
    assert (home / "renamed" / "g.txt").exists() and not (home / "newdir").exists()

    assert ftp.delete("renamed/g.txt").startswith("250")
    assert not (home / "renamed" / "g.txt").exists()
    assert ftp.sendcmd("RMD renamed").startswith("250")
    assert not (home / "renamed").exists()

    for cmd in ("DELE nope.txt", "RMD nodir", "RNFR nope.txt", "SIZE nope.txt",
                "MDTM nope.txt", "CWD nodir"):
        with pytest.raises(ftplib.error_perm) as e:
            ftp.sendcmd(cmd)
        assert e.value.args[0].startswith("550"), (cmd, e.value)


def test_rnto_without_rnfr(ftp):
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("RNTO whatever")
    assert e.value.args[0].startswith("503")


def test_site_chmod_visible_in_list_and_mlsd(ftp, server):
    ftp.storbinary("STOR chmod.txt", io.BytesIO(b"perm test"))
    assert ftp.sendcmd("SITE CHMOD 640 chmod.txt").startswith("200")
    assert stat.S_IMODE((server.home() / "chmod.txt").stat().st_mode) == 0o640
    entries = parse_list(list_lines(ftp))
    assert entries["chmod.txt"]["perm"] == "-rw-r-----"
    facts = mlsd(ftp)["chmod.txt"]
    assert facts["unix.mode"] in ("0640", "640")
    ftp.sendcmd("SITE CHMOD 755 chmod.txt")
    assert parse_list(list_lines(ftp))["chmod.txt"]["perm"] == "-rwxr-xr-x"


def test_size_mdtm_mfmt(ftp, server):
    p = server.home() / "meta.bin"
    p.write_bytes(b"q" * 4321)
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE meta.bin") == "213 4321"
    assert ftp.size("meta.bin") == 4321

    resp = ftp.sendcmd("MDTM meta.bin")
    m = re.fullmatch(r"213 (\d{14})(\.\d+)?", resp)
    assert m, resp
    assert m.group(1) == time.strftime("%Y%m%d%H%M%S", time.gmtime(p.stat().st_mtime))

    resp = ftp.sendcmd("MFMT 20200102030405 meta.bin")
    assert resp.startswith("213"), resp
    assert "20200102030405" in resp
    assert ftp.sendcmd("MDTM meta.bin") == "213 20200102030405"
    assert int(p.stat().st_mtime) == calendar.timegm((2020, 1, 2, 3, 4, 5, 0, 0, 0))
    facts = mlsd(ftp)["meta.bin"]
    assert facts["modify"][:14] == "20200102030405"

    # malformed MFMT time
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd("MFMT 2020 meta.bin")
    assert e.value.args[0][:1] == "5"


def test_size_of_directory_refused(ftp, tree):
    name, _ = tree
    with pytest.raises(ftplib.error_perm) as e:
        ftp.sendcmd(f"SIZE {name}")
    assert e.value.args[0].startswith("550")


UTF8_NAME = "données-日本.txt"


def test_utf8_names_ftplib(ftp, server, tmp_path):
    data = "contenu été 日本語\n".encode("utf-8") * 100
    ftp.voidcmd("TYPE I")
    ftp.storbinary(f"STOR {UTF8_NAME}", io.BytesIO(data))
    # landed on disk under the same (UTF-8) name
    assert (server.home() / UTF8_NAME).read_bytes() == data
    assert UTF8_NAME in ftp.nlst()
    assert UTF8_NAME in parse_list(list_lines(ftp))
    facts = mlsd(ftp)[UTF8_NAME]
    assert int(facts["size"]) == len(data)
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {UTF8_NAME}", buf.write)
    assert buf.getvalue() == data

    ftp.mkd("répertoire-ü")
    assert (server.home() / "répertoire-ü").is_dir()
    ftp.cwd("répertoire-ü")
    assert ftp.pwd() == "/répertoire-ü"


def test_utf8_names_curl_and_lftp(server, tmp_path):
    from urllib.parse import quote
    data = b"curl utf8 payload"
    src = tmp_path / "src.txt"
    src.write_bytes(data)
    name = "curl-" + UTF8_NAME
    curl("-T", src, server.url(quote(name)))
    assert (server.home() / name).read_bytes() == data
    out = tmp_path / "o.txt"
    curl("-o", out, server.url(quote(name)))
    assert out.read_bytes() == data

    name2 = "lftp-" + UTF8_NAME
    lftp(server, f"put {src} -o '{name2}'")
    assert (server.home() / name2).read_bytes() == data
    out2 = tmp_path / "o2.txt"
    lftp(server, f"get '{name2}' -o {out2}")
    assert out2.read_bytes() == data
    p = lftp(server, "cls -1")
    assert name2 in p.stdout.decode("utf-8"), p.stdout


def test_curl_listing(server, tmp_path):
    (server.home() / "curl-list-me.txt").write_bytes(b"12345")
    p = curl(server.url(""))
    lines = p.stdout.decode("utf-8").splitlines()
    entries = parse_list(lines)
    assert entries["curl-list-me.txt"]["size"] == 5
    p = curl("--list-only", server.url(""))
    assert "curl-list-me.txt" in p.stdout.decode("utf-8").splitlines()


def test_lftp_listing_and_file_ops(server):
    home = server.home()
    (home / "lftp-ops.txt").write_bytes(b"abc")
    p = lftp(server, "cls -l --sort=name")
    assert "lftp-ops.txt" in p.stdout.decode()
    lftp(server, "mkdir lftp-dir; mv lftp-ops.txt lftp-dir/moved.txt; chmod 600 lftp-dir/moved.txt")
    assert (home / "lftp-dir" / "moved.txt").read_bytes() == b"abc"
    assert stat.S_IMODE((home / "lftp-dir" / "moved.txt").stat().st_mode) == 0o600
    lftp(server, "rm lftp-dir/moved.txt; rmdir lftp-dir")
    assert not (home / "lftp-dir").exists()


def test_curl_quote_commands(server):
    home = server.home()
    (home / "cq.txt").write_bytes(b"x")
    curl("-Q", "RNFR cq.txt", "-Q", "RNTO cq2.txt", "-Q", "MKD cqdir", server.url(""),
         "-o", os.devnull)
    assert (home / "cq2.txt").exists() and (home / "cqdir").is_dir()
    curl("-Q", "DELE cq2.txt", "-Q", "RMD cqdir", server.url(""), "-o", os.devnull)
    assert not (home / "cq2.txt").exists() and not (home / "cqdir").exists()


def test_names_with_spaces(ftp, server, tmp_path):
    from urllib.parse import quote
    name = "name with  spaces.txt"
    ftp.storbinary(f"STOR {name}", io.BytesIO(b"spaced"))
    assert (server.home() / name).read_bytes() == b"spaced"
    assert name in ftp.nlst()
    assert name in parse_list(list_lines(ftp))
    assert name in mlsd(ftp)
    out = tmp_path / "o.txt"
    curl("-o", out, server.url(quote(name)))
    assert out.read_bytes() == b"spaced"
    out.unlink()
    lftp(server, f"get '{name}' -o {out}")
    assert out.read_bytes() == b"spaced"


def test_large_directory_listing(ftp, server):
    d = server.home() / "many"
    d.mkdir()
    names = {f"file-{i:05d}.dat" for i in range(3000)}
    if isinstance(d, HdfsPath):
        d.touch_many("file-", 3000, ".dat")
    else:
        for n in names:
            (d / n).write_bytes(b"")
    assert set(ftp.nlst("many")) >= {f"many/{n}" for n in names} or set(ftp.nlst("many")) >= names
    assert set(parse_list(list_lines(ftp, "many"))) == names
    entries = {k for k, v in mlsd(ftp, "many").items() if v.get("type") == "file"}
    assert entries == names


def test_list_with_ls_options(ftp, tree):
    """Many clients send `LIST -la`/`LIST -a`; options must not be taken as a path."""
    name, d = tree
    ftp.cwd(name)
    for cmd in ("LIST -la", "LIST -a", "LIST -l"):
        lines = []
        ftp.retrlines(cmd, lines.append)
        entries = parse_list(lines)
        assert "a.txt" in entries and "sub" in entries, (cmd, lines)


def test_wrong_kind_operations(ftp, tree):
    name, d = tree
    ftp.cwd(name)
    for cmd in ("DELE sub", "RMD a.txt", "CWD a.txt", "RETR sub", "SITE CHMOD 999 a.txt",
                "SITE CHMOD abc a.txt", "MKD a.txt"):
        with pytest.raises(ftplib.error_perm) as e:
            if cmd.startswith("RETR"):
                ftp.retrbinary(cmd, lambda b: None)
            else:
                ftp.sendcmd(cmd)
        assert e.value.args[0][:1] == "5", (cmd, e.value)
    with pytest.raises(ftplib.error_perm) as e:
        ftp.storbinary("STOR no-such-dir/x.txt", io.BytesIO(b"x"))
    assert e.value.args[0].startswith("550")
    assert (d / "a.txt").read_bytes() == b"hello\n"
    assert (d / "sub").is_dir()


@local_storage_only("symlinks and non-UTF-8 names are made on the local disk")
def test_listing_survives_odd_entries(ftp, server):
    """A broken symlink and a non-UTF-8 file name must not break listings."""
    d = server.home() / "odd"
    d.mkdir()
    (d / "normal.txt").write_bytes(b"n")
    os.symlink("does-not-exist", d / "dangling")
    fd = os.open(os.path.join(os.fsencode(d), b"latin1-\xe9t\xe9.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    for cmd in ("LIST odd", "NLST odd", "MLSD odd"):
        lines = []
        resp = ftp.retrlines(cmd, lines.append)
        assert resp.startswith("226"), (cmd, resp)
        assert any("normal.txt" in ln for ln in lines), (cmd, lines)
    assert ftp.sendcmd("NOOP").startswith("200")


@local_storage_only("a sparse file of 5 GiB")
def test_sizes_beyond_4gib(ftp, server):
    p = server.home() / "sparse-5g.bin"
    size = 5 * (1 << 30) + 17
    with open(p, "wb") as fh:
        fh.truncate(size)
        fh.seek(size - 6)
        fh.write(b"tail!\n")
    ftp.voidcmd("TYPE I")
    assert ftp.sendcmd("SIZE sparse-5g.bin") == f"213 {size}"
    assert parse_list(list_lines(ftp))["sparse-5g.bin"]["size"] == size
    assert int(mlsd(ftp)["sparse-5g.bin"]["size"]) == size
    buf = io.BytesIO()
    ftp.retrbinary("RETR sparse-5g.bin", buf.write, rest=size - 10)
    assert buf.getvalue() == b"\x00" * 4 + b"tail!\n"
    p.unlink()


def test_hidden_and_denied_names(make_server):
    """--hide-name keeps names out of listings only; --deny-name also refuses them, at any depth and in
    every command that takes a path."""
    s = make_server("--hide-name", "*.tmp", "--deny-name", "_temporary", "--deny-name", ".Trash")
    home = s.home()
    (home / "kept.txt").write_bytes(b"kept\n")
    (home / "scratch.tmp").write_bytes(b"hidden but reachable\n")
    (home / "_temporary").mkdir()
    (home / "_temporary" / "part-0").write_bytes(b"denied\n")
    (home / "out").mkdir()
    (home / "out" / ".Trash").write_bytes(b"denied\n")
    f = s.ftp()
    try:
        for names in (f.nlst(), list(mlsd(f)), [line.split()[-1] for line in list_lines(f)]):
            assert "kept.txt" in names and "out" in names, names
            assert not {"scratch.tmp", "_temporary"} & set(names), names
        assert ".Trash" not in f.nlst("out")
        assert "scratch.tmp" not in f.sendcmd("STAT .")
        buf = io.BytesIO()
        f.retrbinary("RETR scratch.tmp", buf.write)
        assert buf.getvalue() == b"hidden but reachable\n"
        refused = r"^550 /\S*: Permission denied: the name (_temporary|\.Trash) is not allowed$"
        for command in ("CWD _temporary", "DELE out/.Trash", "SIZE out/.Trash", "MLST _temporary", "MKD .Trash",
                        "HASH _temporary/part-0", "SITE CHMOD 600 _temporary/part-0"):
            with pytest.raises(ftplib.error_perm, match=refused):
                f.sendcmd(command)
        with pytest.raises(ftplib.error_perm, match=refused):
            f.retrbinary("RETR _temporary/part-0", buf.write)
        with pytest.raises(ftplib.error_perm, match=refused):
            f.retrlines("LIST _temporary", print)
        with pytest.raises(ftplib.error_perm, match=refused):
            f.storbinary("STOR out/.Trash", io.BytesIO(b"overwritten"))
        f.sendcmd("RNFR kept.txt")
        with pytest.raises(ftplib.error_perm, match=refused):
            f.sendcmd("RNTO _temporary/kept.txt")
        assert (home / "_temporary" / "part-0").read_bytes() == b"denied\n"
        assert (home / "out" / ".Trash").read_bytes() == b"denied\n"
        assert "refused by --deny-name (_temporary)" in s.log_text()
    finally:
        f.close()
