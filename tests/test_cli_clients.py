"""The everyday command-line clients against the real server: wget (ftp:// and ftps://, explicit and
implicit, PROT P and PROT C, a recursive fetch) and tnftp, the classic BSD `ftp` command, driven by a
script (passive and active) and by URL. Both come from Debian through scripts/install/install-test-deps.sh."""

import os

import pytest

from tls_fixtures import (
    PASSWORD,
    USER,
    certs,  # noqa: F401 (fixture)
    require_tool,
    run,
    running_tls,
)

HOST = "127.0.0.1"
PAYLOAD_SIZE = (3 << 20) + 17


@pytest.fixture(scope="module")
def reuse_server(tmp_path_factory, certs):
    """A server that refuses PROT P data connections not resuming the control TLS session, so every
    ftps:// fetch below also shows wget resumes it."""
    with running_tls(tmp_path_factory.mktemp("cli-server"), certs, ["--require-ssl-reuse"]) as server:
        yield server


@pytest.fixture(scope="module")
def payload(reuse_server):
    data = os.urandom(PAYLOAD_SIZE)
    (reuse_server.home() / "payload.bin").write_bytes(data)
    return data


def wget(*args, cwd):
    require_tool("wget")
    return run(["wget", "--no-verbose", "--tries=1", "--timeout=30", "--no-netrc", *args], cwd=cwd)


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_wget_ftp(reuse_server, payload, tmp_path, passive):
    target = tmp_path / "payload.bin"
    args = [] if passive else ["--no-passive-ftp"]
    result = wget(*args, "-O", str(target), f"ftp://{USER}:{PASSWORD}@{HOST}:{reuse_server.port}/payload.bin", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == payload


@pytest.mark.parametrize("protect", [True, False], ids=["prot-p", "prot-c"])
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_wget_ftps(reuse_server, certs, payload, tmp_path, implicit, protect):
    target = tmp_path / "payload.bin"
    args = ["--ca-certificate", str(certs["cert"]), "-O", str(target)]
    args += ["--ftps-implicit"] if implicit else []
    args += [] if protect else ["--ftps-clear-data-connection"]
    port = reuse_server.ftps_port if implicit else reuse_server.port
    log_start = len(reuse_server.log_text())
    result = wget(*args, f"ftps://{USER}:{PASSWORD}@{HOST}:{port}/payload.bin", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == payload
    handshake = "implicit FTPS, TLSv1.3" if implicit else "control connection now TLSv1.3"
    assert handshake in reuse_server.log_text()[log_start:]


def test_wget_recursive_fetch(reuse_server, certs, tmp_path):
    """wget -r reads LIST output to walk a tree, as mirroring scripts do."""
    tree = reuse_server.home() / "tree"
    (tree / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(70000), "sub/c.txt": b"gamma\n"}
    for name, data in files.items():
        (tree / name).write_bytes(data)
    url = f"ftps://{USER}:{PASSWORD}@{HOST}:{reuse_server.port}/tree/"
    result = wget("-r", "-nH", "--ca-certificate", str(certs["cert"]), url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name, data in files.items():
        assert (tmp_path / "tree" / name).read_bytes() == data, name


def tnftp(script, *args, cwd):
    require_tool("tnftp")
    # -n: no auto-login (the script logs in); -N /dev/null: no ~/.netrc; -v: the server's replies.
    return run(["tnftp", "-n", "-v", "-N", "/dev/null", *args], input=script, cwd=cwd)


@pytest.mark.parametrize("mode", ["-p", "-A"], ids=["passive", "active"])
def test_tnftp_script(reuse_server, payload, tmp_path, mode):
    name = f"tnftp{mode}"
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    script = "\n".join([
        f"open {HOST} {reuse_server.port}",
        f"user {USER} {PASSWORD}",
        "binary",
        f"mkdir {name}",
        f"cd {name}",
        f"put {upload} up.bin",
        f"get up.bin {tmp_path / 'down.bin'}",
        "rename up.bin kept.bin",
        f"put {upload} scratch.bin",
        "delete scratch.bin",
        "ls",
        "bye",
        "",
    ])  # fmt: skip
    result = tnftp(script, mode, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    out = result.stdout
    assert "230 Login successful." in out and "221 Goodbye." in out
    assert out.count("226 Transfer complete.") == 3, out  # put, get, put
    assert "250 Rename successful." in out and "250 Delete operation successful." in out
    data_setup = "229 Entering Extended Passive Mode" if mode == "-p" else "200 PORT command successful"
    assert data_setup in out, out
    listing = [line for line in out.splitlines() if line.startswith("-rw")]
    assert len(listing) == 1 and listing[0].endswith(" kept.bin") and f" {PAYLOAD_SIZE} " in listing[0], listing
    assert (tmp_path / "down.bin").read_bytes() == payload
    assert (reuse_server.home() / name / "kept.bin").read_bytes() == payload
    assert not (reuse_server.home() / name / "scratch.bin").exists()


def test_tnftp_url_fetch(reuse_server, payload, tmp_path):
    target = tmp_path / "fetched.bin"
    url = f"ftp://{USER}:{PASSWORD}@{HOST}:{reuse_server.port}/payload.bin"
    result = tnftp("", "-o", str(target), url, cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert target.read_bytes() == payload
