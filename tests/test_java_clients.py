"""Apache commons-net, the FTP client Java service applications embed, against the real server:
tests/java/CommonsNetClient.java runs one session of every call such code makes (store, append,
retrieve, REST resume, listFiles via SYST, mlistDir, rename, delete, mkdir/rmdir, SITE CHMOD) with
FTPClient in passive and active mode and FTPSClient explicit and implicit, under PROT P and PROT C.
What each step did is checked on the server's side.

commons-net comes from Maven Central through scripts/install/install-test-deps.sh (cached outside the
repository); a JDK 17 from Debian compiles the program."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from tls_fixtures import (
    PASSWORD,
    USER,
    certs,  # noqa: F401 (fixture)
    require_tool,
    run,
    running_tls,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "java" / "CommonsNetClient.java"
PARTIAL_SOURCE = ROOT / "tests" / "java" / "PartialDownload.java"
MAVEN = Path(os.environ.get("HDFSFTPD_CACHE", Path.home() / ".cache" / "hdfsftpd")) / "maven"
# As scripts/install/install-test-deps.sh fetches them: commons-net and its run-time dependency.
JARS = [MAVEN / "commons-net-3.13.0.jar", MAVEN / "commons-io-2.21.0.jar"]
CLASSPATH = ":".join(map(str, JARS))

# (security, PROT, data connection mode): FTPClient in both modes; FTPSClient explicit and implicit,
# each with PBSZ 0 + PROT P and with PROT C, in both modes.
CASES = [("plain", "C", mode) for mode in ("passive", "active")] + [
    (security, prot, mode)
    for security in ("explicit", "implicit")
    for prot in ("P", "C")
    for mode in ("passive", "active")
]


@pytest.fixture(scope="module")
def client_classes(tmp_path_factory):
    require_tool("javac")
    for jar in JARS:
        if not jar.is_file():
            pytest.fail(f"{jar} is missing: run scripts/install/install-test-deps.sh")
    classes = tmp_path_factory.mktemp("java-classes")
    compiled = run(["javac", "-cp", CLASSPATH, "-d", str(classes), str(SOURCE), str(PARTIAL_SOURCE)], timeout=180)
    assert compiled.returncode == 0, compiled.stderr
    return classes


@pytest.fixture(scope="module")
def servers(tmp_path_factory, certs):
    """One server as installed, for FTPClient and PROT C; one that refuses clear data connections
    (--require-data-tls), so a PROT P session proves its data went through TLS."""
    with running_tls(tmp_path_factory.mktemp("java-server"), certs) as default:
        extra = ["--require-data-tls"]
        with running_tls(tmp_path_factory.mktemp("java-private"), certs, extra) as private:
            yield {"C": default, "P": private}


def random_file(path, size):
    path.write_bytes(os.urandom(size))
    return path.read_bytes()


# Listed entries' times: recent (LIST shows HH:MM), with seconds, which only MLSD carries.
LISTING = {"report.csv": 1234, "empty.dat": 0, "archive": None}


def prepare(remote, local):
    """The files the session works on, on both sides; returns what the checks need."""
    remote.mkdir()
    local.mkdir()
    now = int(time.time())
    listing = remote / "listing"
    listing.mkdir()
    times = {}
    for number, (name, size) in enumerate(LISTING.items()):
        path = listing / name
        if size is None:
            path.mkdir()
        else:
            path.write_bytes(os.urandom(size))
        times[name] = now - 3600 * (number + 1) - 17
        os.utime(path, (times[name], times[name]))
    (remote / "to-rename.txt").write_text("renamed by commons-net\n")
    (remote / "to-delete.txt").write_text("deleted by commons-net\n")
    (remote / "old-dir").mkdir()
    (remote / "chmod.txt").write_text("mode set by SITE CHMOD\n")
    (remote / "chmod.txt").chmod(0o644)
    download = random_file(remote / "download.bin", (3 << 20) + 5)
    (local / "partial.bin").write_bytes(download[: (1 << 20) + 3])
    return {
        "upload": random_file(local / "upload.bin", (2 << 20) + 12345),
        "append": random_file(local / "append.bin", (300 << 10) + 7),
        "download": download,
        "times": times,
    }


def run_client(classes, certs, security, prot, mode, port, remote, local):
    command = [
        "java", "-Duser.timezone=UTC",  # LIST times are UTC; commons-net reads them in this zone
        "-cp", f"{CLASSPATH}:{classes}", "CommonsNetClient",
        security, prot, mode, "127.0.0.1", str(port), USER, PASSWORD, str(certs["cert"]), remote, str(local),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def listed(output, kind):
    """{name: (type, size, milliseconds)} from the program's LIST or MLSD lines."""
    entries = {}
    for line in output.splitlines():
        if line.startswith(f"{kind}: "):
            name, type_, size, millis = line.removeprefix(f"{kind}: ").split(" ")
            entries[name] = (type_, int(size), int(millis))
    return entries


def expected(times, kind):
    entries = {}
    for name, size in LISTING.items():
        stamp = times[name] - times[name] % 60 if kind == "LIST" else times[name]  # LIST: to the minute
        if size is None:
            entries[name] = ("dir", None, stamp * 1000)
        else:
            entries[name] = ("file", size, stamp * 1000)
    return entries


def without_dir_sizes(entries):
    return {name: (t, None if t == "dir" else size, ms) for name, (t, size, ms) in entries.items()}


@pytest.mark.parametrize("security,prot,mode", CASES, ids=["-".join(case) for case in CASES])
def test_commons_net(client_classes, servers, certs, tmp_path, security, prot, mode):
    server = servers[prot]
    case = f"{security}-{prot}-{mode}"
    remote, local = server.home() / case, tmp_path / "local"
    data = prepare(remote, local)
    port = server.ftps_port if security == "implicit" else server.port
    log_start = len(server.log_text())
    result = run_client(client_classes, certs, security, prot, mode, port, f"/{case}", local)
    output = result.stdout
    assert result.returncode == 0, (output, result.stderr[-3000:])

    assert "syst: UNIX Type: L8" in output  # listFiles() picks the UNIX parser from it
    if security != "plain":
        assert "prot: 200 PROT now " + ("Private" if prot == "P" else "Clear") in output
        handshake = "implicit FTPS, TLSv1.3" if security == "implicit" else "control connection now TLSv1.3"
        assert handshake in server.log_text()[log_start:]
    # storeFile then appendFile.
    assert (remote / "upload.bin").read_bytes() == data["upload"] + data["append"]
    # retrieveFile, and a download resumed with setRestartOffset.
    assert (local / "download.bin").read_bytes() == data["download"]
    assert (local / "partial.bin").read_bytes() == data["download"]
    # listFiles() and mlistDir(): names, types, sizes, times.
    assert without_dir_sizes(listed(output, "LIST")) == expected(data["times"], "LIST")
    assert without_dir_sizes(listed(output, "MLSD")) == expected(data["times"], "MLSD")
    # rename, deleteFile, makeDirectory, removeDirectory, SITE CHMOD.
    assert not (remote / "to-rename.txt").exists()
    assert (remote / "renamed.txt").read_text() == "renamed by commons-net\n"
    assert not (remote / "to-delete.txt").exists()
    assert (remote / "new-dir").is_dir() and not (remote / "old-dir").exists()
    assert (remote / "chmod.txt").stat().st_mode & 0o777 == 0o640
    assert "logout: 221" in output



def test_ftpsclient_cannot_meet_require_ssl_reuse(client_classes, certs, tmp_path):
    """Why --require-ssl-reuse is off by default: FTPSClient starts every data connection with a
    fresh TLS session, so such a server refuses its first transfer (522)."""
    with running_tls(tmp_path / "server", certs, ["--require-ssl-reuse"]) as server:
        prepare(server.home() / "reuse", tmp_path / "local")
        result = run_client(client_classes, certs, "explicit", "P", "passive", server.port, "/reuse", tmp_path / "local")
        assert result.returncode == 1, (result.stdout, result.stderr[-3000:])
        assert "FAILED storeFile: 522 " in result.stdout
        assert not (server.home() / "reuse" / "upload.bin").exists()


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_a_download_the_application_closed_early_is_not_complete(client_classes, certs, tmp_path, version):
    """An application reads 100 KB of a 20 MiB PROT P download and closes the stream: the JDK sends its
    close_notify, then reads and drops what follows before it resets. The server must answer 426 and log
    the transfer incomplete, every time (before the fix, 6 tries in 40 got 226 and a complete line)."""
    tries, size = 40, 20 << 20
    xferlog = tmp_path / "xferlog"
    with running_tls(tmp_path / "server", certs, ["--xferlog", str(xferlog)]) as server:
        (server.home() / "big.bin").write_bytes(os.urandom(size))
        command = [
            "java", f"-Djdk.tls.client.protocols={version}", "-cp", f"{CLASSPATH}:{client_classes}",
            "PartialDownload", "127.0.0.1", str(server.port), USER, PASSWORD, str(certs["cert"]), "big.bin",
            "100000", str(tries),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr[-3000:]
        replies = [line.removeprefix("reply: ") for line in result.stdout.splitlines()]
        assert len(replies) == tries, result.stdout
        assert all(reply.startswith("426 ") for reply in replies), [r for r in replies if not r.startswith("426 ")]
        assert f"control connection now {version}" in server.log_text()
    # xferlog: one line per try, each marked incomplete (last field i) and short of the file's size.
    records = [line.split() for line in xferlog.read_text().splitlines()]
    assert len(records) == tries
    assert all(record[-1] == "i" and int(record[7]) < size for record in records), records

