"""Upload / download with curl, lftp and ftplib: sizes, modes, ASCII, resume."""

import io
import os

import pytest

from conftest import (HOST, KiB, MiB, HdfsPath, curl, lftp, local_storage_only, make_payload, sha256_file)

CLIENTS = ["ftplib", "curl", "lftp"]
SIZES = {"0B": 0, "1B": 1, "64KiB": 64 * KiB, "100MiB": 100 * MiB}


# ---- per-client primitives --------------------------------------------------

def upload(client, server, local, remote, active=False, ascii_mode=False):
    if client == "ftplib":
        f = server.ftp()
        try:
            f.set_pasv(not active)
            with open(local, "rb") as fp:
                if ascii_mode:
                    f.storlines(f"STOR {remote}", fp)
                else:
                    f.storbinary(f"STOR {remote}", fp, blocksize=256 * KiB)
        finally:
            f.quit()
    elif client == "curl":
        args = ["-T", local, server.url(remote)]
        if active:
            args = ["-P", HOST] + args
        if ascii_mode:
            # curl -B converts LF to CRLF on upload and CRLF to LF on download
            args = ["--use-ascii"] + args
        curl(*args)
    elif client == "lftp":
        settings = "set ftp:passive-mode off;" if active else ""
        a = "-a " if ascii_mode else ""
        lftp(server, f"put {a}{local} -o {remote}", settings=settings)
    else:
        raise AssertionError(client)


def download(client, server, remote, local, active=False, ascii_mode=False):
    if os.path.exists(local):
        os.unlink(local)
    if client == "ftplib":
        f = server.ftp()
        try:
            f.set_pasv(not active)
            with open(local, "wb") as out:
                if ascii_mode:
                    f.retrlines(f"RETR {remote}", lambda ln: out.write(ln.encode("utf-8") + b"\n"))
                else:
                    f.retrbinary(f"RETR {remote}", out.write, blocksize=256 * KiB)
        finally:
            f.quit()
    elif client == "curl":
        args = ["-o", local, server.url(remote)]
        if active:
            args = ["-P", HOST] + args
        if ascii_mode:
            args = ["--use-ascii"] + args
        curl(*args)
        if not os.path.exists(local):
            # curl may not create the output file for an empty download
            open(local, "wb").close()
    elif client == "lftp":
        settings = "set ftp:passive-mode off;" if active else ""
        a = "-a " if ascii_mode else ""
        lftp(server, f"get {a}{remote} -o {local}", settings=settings)
    else:
        raise AssertionError(client)


# ---- binary round trips -----------------------------------------------------

@pytest.mark.parametrize("size_name", list(SIZES))
@pytest.mark.parametrize("client", CLIENTS)
def test_binary_roundtrip_passive(client, size_name, server, tmp_path, big_file):
    size = SIZES[size_name]
    if size == 100 * MiB:
        src = big_file
    else:
        src = tmp_path / "src.bin"
        src.write_bytes(make_payload(size, seed=hash((client, size_name)) & 0xFFFF))
    remote = f"bin-{client}-{size_name}.bin"

    upload(client, server, str(src), remote)
    on_disk = server.home() / remote
    assert on_disk.exists(), f"{remote} not found in the user's home on disk"
    assert on_disk.stat().st_size == size
    assert sha256_file(on_disk) == sha256_file(src), "uploaded bytes differ on disk"

    out = tmp_path / "out.bin"
    download(client, server, remote, str(out))
    assert out.stat().st_size == size
    assert sha256_file(out) == sha256_file(src), "downloaded bytes differ"
    if size == 100 * MiB:
        on_disk.unlink()


@pytest.mark.parametrize("client", CLIENTS)
def test_binary_roundtrip_active(client, server, tmp_path):
    data = make_payload(64 * KiB + 7, seed=11)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    remote = f"active-{client}.bin"
    upload(client, server, str(src), remote, active=True)
    assert (server.home() / remote).read_bytes() == data

    out = tmp_path / "out.bin"
    download(client, server, remote, str(out), active=True)
    assert out.read_bytes() == data


@pytest.mark.parametrize("client", CLIENTS)
def test_download_file_created_on_disk(client, server, tmp_path):
    """A file put into the local root directly is served byte-identical."""
    data = make_payload(200 * KiB + 3, seed=5)
    (server.home() / f"disk-{client}.bin").write_bytes(data)
    out = tmp_path / "o.bin"
    download(client, server, f"disk-{client}.bin", str(out))
    assert out.read_bytes() == data


# ---- ASCII mode -------------------------------------------------------------

TEXT = ("first line\n"
        "second line with trailing spaces   \n"
        "\n"
        "tab\tseparated\tvalues\n"
        "unicode: données 日本\n"
        + "long " * 400 + "\n"
        "last line\n").encode("utf-8")


@pytest.mark.parametrize("client", CLIENTS)
def test_ascii_roundtrip(client, server, tmp_path):
    src = tmp_path / "text.txt"
    src.write_bytes(TEXT)
    remote = f"ascii-{client}.txt"
    upload(client, server, str(src), remote, ascii_mode=True)
    # the server converts CRLF on the wire to LF on disk
    assert (server.home() / remote).read_bytes() == TEXT, \
        "ASCII upload did not land as the same LF text on disk"

    out = tmp_path / "out.txt"
    download(client, server, remote, str(out), ascii_mode=True)
    assert out.read_bytes() == TEXT, "ASCII download did not round-trip"


def test_default_type_is_ascii(server):
    """RFC 959 3.1.1.1: the default representation type is ASCII Non-print.
    lftp relies on it: `put -a`/`get -a` send no TYPE A on a fresh session."""
    (server.home() / "default-type.txt").write_bytes(b"l1\nl2\n")
    c = server.raw()
    try:
        d = c.pasv()
        r = c.cmd("RETR default-type.txt")
        assert r[:3] in ("150", "125"), r
        from conftest import recv_all
        data = recv_all(d)
        assert c.reply().startswith("226")
        assert data == b"l1\r\nl2\r\n", \
            f"a session that sent no TYPE should be in ASCII mode; got {data!r}"
    finally:
        c.close()


def test_ascii_wire_format_is_crlf(server):
    """RFC 959 TYPE A: LF on disk goes out as CRLF; CRLF in comes in as LF."""
    (server.home() / "wire.txt").write_bytes(b"a\nbb\n\nccc\n")
    c = server.raw()
    try:
        assert c.cmd("TYPE A").startswith("200")
        d = c.pasv()
        r = c.cmd("RETR wire.txt")
        assert r[:3] in ("150", "125"), r
        from conftest import recv_all
        data = recv_all(d)
        assert c.reply().startswith("226")
        assert data == b"a\r\nbb\r\n\r\nccc\r\n"

        d = c.pasv()
        r = c.cmd("STOR wire-up.txt")
        assert r[:3] in ("150", "125"), r
        d.sendall(b"x\r\nyy\r\n\r\nz\r\n")
        d.close()
        assert c.reply().startswith("226")
        assert (server.home() / "wire-up.txt").read_bytes() == b"x\nyy\n\nz\n"

        # TYPE I: bytes untouched
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd("RETR wire.txt")[:3] in ("150", "125")
        assert recv_all(d) == b"a\nbb\n\nccc\n"
        assert c.reply().startswith("226")
    finally:
        c.close()


# ---- resume -----------------------------------------------------------------

RESUME_SIZE = 1 * MiB + 12345
RESUME_AT = 300_001


@pytest.mark.parametrize("client", CLIENTS)
def test_resume_download(client, server, tmp_path):
    data = make_payload(RESUME_SIZE, seed=21)
    remote = f"resume-dl-{client}.bin"
    (server.home() / remote).write_bytes(data)
    local = tmp_path / "partial.bin"
    local.write_bytes(data[:RESUME_AT])

    if client == "ftplib":
        f = server.ftp()
        try:
            f.voidcmd("TYPE I")
            with open(local, "ab") as out:
                f.retrbinary(f"RETR {remote}", out.write, rest=RESUME_AT)
        finally:
            f.quit()
    elif client == "curl":
        curl("-C", "-", "-o", local, server.url(remote))
    else:
        lftp(server, f"get -c {remote} -o {local}")

    got = local.read_bytes()
    assert len(got) == RESUME_SIZE
    assert got == data, "resumed download differs"


@pytest.mark.parametrize("client", CLIENTS)
def test_resume_upload(client, server, tmp_path):
    data = make_payload(RESUME_SIZE, seed=22)
    remote = f"resume-ul-{client}.bin"
    on_disk = server.home() / remote
    on_disk.write_bytes(data[:RESUME_AT])
    local = tmp_path / "full.bin"
    local.write_bytes(data)

    if client == "ftplib":
        f = server.ftp()
        try:
            f.voidcmd("TYPE I")
            with open(local, "rb") as fp:
                fp.seek(RESUME_AT)
                f.storbinary(f"STOR {remote}", fp, rest=RESUME_AT)
        finally:
            f.quit()
    elif client == "curl":
        curl("-C", "-", "-T", local, server.url(remote))
    else:
        lftp(server, f"put -c {local} -o {remote}")

    assert on_disk.stat().st_size == RESUME_SIZE
    assert on_disk.read_bytes() == data, "resumed upload differs on disk"


def test_appe_appends(ftp, server):
    ftp.voidcmd("TYPE I")
    ftp.storbinary("STOR appe.txt", io.BytesIO(b"hello "))
    ftp.storbinary("APPE appe.txt", io.BytesIO(b"world"))
    assert (server.home() / "appe.txt").read_bytes() == b"hello world"
    # APPE to a missing file creates it
    ftp.storbinary("APPE appe-new.txt", io.BytesIO(b"fresh"))
    assert (server.home() / "appe-new.txt").read_bytes() == b"fresh"


def test_stor_overwrites_and_truncates(ftp, server):
    ftp.voidcmd("TYPE I")
    ftp.storbinary("STOR over.bin", io.BytesIO(b"x" * 5000))
    ftp.storbinary("STOR over.bin", io.BytesIO(b"short"))
    assert (server.home() / "over.bin").read_bytes() == b"short"


def test_rest_then_retr_raw(server):
    (server.home() / "rest.txt").write_bytes(b"0123456789")
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        # REST immediately precedes the transfer command (RFC 959 3.5)
        assert c.cmd("REST 4").startswith("350")
        assert c.cmd("RETR rest.txt")[:3] in ("150", "125")
        from conftest import recv_all
        assert recv_all(d) == b"456789"
        assert c.reply().startswith("226")
    finally:
        c.close()


def test_retr_refuses_a_restart_beyond_the_end_and_a_directory(server):
    """Both checked by the storage when it opens the file (each backend the same), before any data
    connection; a restart at the very end is an empty download."""
    (server.home() / "ten.txt").write_bytes(b"0123456789")
    (server.home() / "retr-dir").mkdir()
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        assert c.cmd("REST 11").startswith("350")
        reply = c.cmd("RETR ten.txt")
        assert reply.startswith("554") and "restart offset 11 is beyond the end of the file (10 bytes)" in reply, reply
        reply = c.cmd("RETR retr-dir")
        assert reply.startswith("550") and "is a directory" in reply, reply
        d = c.pasv()
        assert c.cmd("REST 10").startswith("350")
        assert c.cmd("RETR ten.txt")[:3] in ("150", "125")
        from conftest import recv_all
        assert recv_all(d) == b""
        assert c.reply().startswith("226")
    finally:
        c.close()


def test_ascii_upload_crlf_split_across_reads(server):
    """CR and LF of one line ending arriving in different TCP segments."""
    import socket as _socket
    import time as _time
    lines = [f"line {i} ".encode() * (i % 7 + 1) for i in range(400)]
    wire = b"".join(ln + b"\r\n" for ln in lines)
    expect = b"".join(ln + b"\n" for ln in lines)
    c = server.raw()
    try:
        assert c.cmd("TYPE A").startswith("200")
        d = c.pasv()
        d.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        assert c.cmd("STOR ascii-split.txt")[:3] in ("150", "125")
        # cut right after every 5th CR so that CR ends one segment
        pos = 0
        cuts = [i + 1 for i in range(len(wire)) if wire[i:i + 1] == b"\r"][::5]
        for cut in cuts:
            d.sendall(wire[pos:cut])
            _time.sleep(0.002)
            pos = cut
        d.sendall(wire[pos:])
        d.close()
        assert c.reply(timeout=30).startswith("226")
    finally:
        c.close()
    assert (server.home() / "ascii-split.txt").read_bytes() == expect


def test_abor_during_upload(server):
    c = server.raw()
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd("STOR abor-upload.bin")[:3] in ("150", "125")
        d.sendall(b"u" * 200_000)
        c.send(b"ABOR\r\n")
        first = c.reply(timeout=10)
        assert first[:3] in ("426", "226"), first
        if first.startswith("426"):
            assert c.reply(timeout=10).startswith("226")
        d.close()
        assert c.cmd("NOOP").startswith("200")
    finally:
        c.close()


def _tree_digest(root):
    if isinstance(root, HdfsPath):
        return _hdfs_tree_digest(root, root.path)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = sha256_file(p)
        for n in dirnames:
            out[os.path.relpath(os.path.join(dirpath, n), root) + "/"] = "dir"
    return out


def test_lftp_mirror_tree_both_ways(server, tmp_path):
    src = tmp_path / "tree"
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "empty-dir").mkdir()
    (src / "top.bin").write_bytes(make_payload(70_000, seed=31))
    (src / "a" / "mid.txt").write_bytes(b"mid\n" * 1000)
    (src / "a" / "b" / "c" / "deep.bin").write_bytes(make_payload(5, seed=32))
    (src / "a" / "b" / "zero").write_bytes(b"")
    lftp(server, f"mirror -R {src} mirrored")
    assert _tree_digest(server.home() / "mirrored") == _tree_digest(src)
    back = tmp_path / "back"
    lftp(server, f"mirror mirrored {back}")
    assert _tree_digest(back) == _tree_digest(src)


@pytest.mark.parametrize("method", ["multicwd", "singlecwd", "nocwd"])
def test_curl_nested_paths(server, tmp_path, method):
    data = make_payload(9999, seed=33)
    src = tmp_path / "n.bin"
    src.write_bytes(data)
    (server.home() / f"curl-nested-{method}" / "x" / "y").mkdir(parents=True)
    url = server.url(f"curl-nested-{method}/x/y/n.bin")
    curl("--ftp-method", method, "-T", src, url)
    assert (server.home() / f"curl-nested-{method}" / "x" / "y" / "n.bin").read_bytes() == data
    out = tmp_path / "o.bin"
    curl("--ftp-method", method, "-o", out, url)
    assert out.read_bytes() == data


def test_curl_create_dirs(server, tmp_path):
    src = tmp_path / "c.txt"
    src.write_bytes(b"created")
    curl("--ftp-create-dirs", "-T", src, server.url("curl-made/one/two/c.txt"))
    assert (server.home() / "curl-made" / "one" / "two" / "c.txt").read_bytes() == b"created"


def _hdfs_tree_digest(directory, root):
    out = {}
    for child in directory.iterdir():
        relative = child.path[len(root) + 1:]
        if child.is_dir():
            out[relative + "/"] = "dir"
            out.update(_hdfs_tree_digest(child, root))
        else:
            out[relative] = sha256_file(child)
    return out


@local_storage_only("a sparse file of 3 GiB")
def test_download_more_than_2gib_in_one_transfer(server):
    """One RETR of > 2 GiB (sendfile and similar calls cap a single call at
    ~2 GiB): every byte arrives, with the right tail."""
    p = server.home() / "sparse-3g.bin"
    size = 3 * (1 << 30) + 4321
    start = 700 * MiB
    with open(p, "wb") as fh:
        fh.truncate(size)
        fh.seek((1 << 31) - 3)
        fh.write(b"MID2G")
        fh.seek(size - 8)
        fh.write(b"THE-END!")
    c = server.raw(timeout=60)
    try:
        assert c.cmd("TYPE I").startswith("200")
        d = c.pasv()
        assert c.cmd(f"REST {start}").startswith("350")
        assert c.cmd("RETR sparse-3g.bin")[:3] in ("150", "125")
        d.settimeout(60)
        total = 0
        buf = bytearray(4 * MiB)
        view = memoryview(buf)
        mid_off = (1 << 31) - 3 - start
        mid = b""
        tail = b""
        while True:
            n = d.recv_into(view)
            if not n:
                break
            chunk_lo = total
            total += n
            if chunk_lo <= mid_off + 5 and total > mid_off:
                lo = max(mid_off, chunk_lo) - chunk_lo
                hi = min(mid_off + 5, total) - chunk_lo
                mid += bytes(view[lo:hi])
            tail = (tail + bytes(view[max(0, n - 8):n]))[-8:]
        d.close()
        assert c.reply(timeout=60).startswith("226")
    finally:
        c.close()
        p.unlink()
    assert total == size - start, f"got {total} bytes, expected {size - start}"
    assert mid == b"MID2G"
    assert tail == b"THE-END!"


@pytest.mark.parametrize("flags", [
    ["--disable-epsv"],                      # PASV
    ["--ftp-pasv"],                          # EPSV (curl default)
    ["-P", HOST, "--disable-eprt"],          # PORT
    ["-P", HOST],                            # EPRT
    ["-P", "-"],                             # active on the control connection's address
], ids=["pasv", "epsv", "port", "eprt", "port-dash"])
def test_curl_data_connection_kinds(server, tmp_path, flags):
    data = make_payload(33_333, seed=41)
    src = tmp_path / "k.bin"
    src.write_bytes(data)
    name = "curl-kind-" + "-".join(f.strip("-") for f in flags).replace(".", "_") + ".bin"
    curl(*flags, "-T", src, server.url(name))
    assert (server.home() / name).read_bytes() == data
    out = tmp_path / "o.bin"
    curl(*flags, "-o", out, server.url(name))
    assert out.read_bytes() == data


def test_curl_append(server, tmp_path):
    (server.home() / "curl-append.txt").write_bytes(b"first,")
    src = tmp_path / "a.txt"
    src.write_bytes(b"second")
    curl("--append", "-T", src, server.url("curl-append.txt"))
    assert (server.home() / "curl-append.txt").read_bytes() == b"first,second"
