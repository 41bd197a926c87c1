"""The HDFS backend end to end on a real HDFS (tests/hdfs_cluster.py: NameNode + 3 DataNodes, permissions on):
the real hdfsftpd binary with `--storage hdfs`, driven by ftplib and curl, over the real libhdfs, JVM and
Hadoop client classes. What HDFS recorded is read through the cluster's own Hadoop API (`ctl stat/get/ls`
as the HDFS superuser), never through the gateway. Each server's users act as themselves."""

import calendar
import ftplib
import hashlib
import io
import os
import signal
import subprocess
import sys
import time

import pytest

from harness import BIN, binary, free_port, wait_for

from hdfs_fixtures import (  # noqa: F401  (fixtures are found by name)
    PASSWORD,
    hadoop_jars,
    hdfs_server,
    start_hdfs_server,
)


def upload(ftp, name, data):
    return ftp.storbinary(f"STOR {name}", io.BytesIO(data))


def download(ftp, name):
    out = io.BytesIO()
    ftp.retrbinary(f"RETR {name}", out.write)
    return out.getvalue()


def mlsd(ftp, path=""):
    return {name: facts for name, facts in ftp.mlsd(path) if facts.get("type") not in ("cdir", "pdir")}


# Downloads past the first MiB are read ahead on a thread in 1 MiB chunks: sizes at and around those
# chunk edges (a last chunk that is full, one that is empty, one of a single byte) come out whole.
@pytest.mark.parametrize("size", [0, 1, 64 * 1024, 1 << 20, 2 << 20, (2 << 20) + 1, 100 * 1024 * 1024])
def test_upload_and_download_are_byte_identical(hdfs_server, tmp_path, size):
    data = os.urandom(size)
    with hdfs_server.ftp() as ftp:
        assert upload(ftp, "blob", data).startswith("226")
        assert ftp.size("blob") == size
        assert hashlib.sha256(download(ftp, "blob")).digest() == hashlib.sha256(data).digest()
    assert hdfs_server.read("blob") == data
    # The same file through curl, the other client.
    fetched = tmp_path / "fetched"
    subprocess.run(["curl", "-sS", "-o", str(fetched), hdfs_server.url("blob")], check=True, timeout=300)
    assert fetched.read_bytes() == data


def test_a_file_of_several_blocks_round_trips(start_hdfs_server, hdfs_cluster):
    """1 MiB blocks (a client setting): a 5.5 MiB file is 6 blocks, each on 2 of the 3 DataNodes."""
    server = start_hdfs_server("--hdfs-conf", "dfs.blocksize=1048576")
    data = os.urandom(11 * 512 * 1024)
    with server.ftp() as ftp:
        assert upload(ftp, "blocks.bin", data).startswith("226")
        assert download(ftp, "blocks.bin") == data
    assert server.read("blocks.bin") == data
    assert server.stat("blocks.bin")["size"] == len(data)


def test_curl_upload(hdfs_server, tmp_path):
    source = tmp_path / "source"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    subprocess.run(["curl", "-sS", "-T", str(source), hdfs_server.url("up.bin")], check=True, timeout=120)
    assert hdfs_server.read("up.bin") == source.read_bytes()


def test_files_belong_to_the_ftp_user_in_hdfs(hdfs_server):
    with hdfs_server.ftp() as ftp:
        upload(ftp, "mine.txt", b"mine")
        ftp.mkd("made")
        facts = mlsd(ftp)
        lines = []
        ftp.retrlines("LIST", lines.append)
    with hdfs_server.ftp(hdfs_server.other) as ftp:
        upload(ftp, "theirs.txt", b"theirs")
    mine, made = hdfs_server.stat("mine.txt"), hdfs_server.stat("made")
    theirs = hdfs_server.stat("theirs.txt", user=hdfs_server.other)
    assert (mine["owner"], made["owner"], theirs["owner"]) == (hdfs_server.user, hdfs_server.user, hdfs_server.other)
    # New files take the group of their directory, as HDFS does.
    assert mine["group"] == hdfs_server.user
    assert (mine["mode"], made["mode"], mine["replication"], made["type"]) == ("644", "755", 2, "dir")
    # Listings carry what HDFS recorded: owner, group, mode, replication.
    assert facts["mine.txt"]["unix.owner"] == hdfs_server.user
    assert facts["mine.txt"]["unix.group"] == hdfs_server.user
    assert facts["mine.txt"]["unix.mode"] == "0644"
    assert facts["mine.txt"]["x.hdfs.replication"] == "2"
    listed = {line.split()[-1]: line.split() for line in lines}
    assert listed["mine.txt"][0] == "-rw-r--r--" and listed["mine.txt"][2:4] == [hdfs_server.user, hdfs_server.user]
    assert listed["made"][0] == "drwxr-xr-x"


def test_new_files_and_directories_take_the_session_umask(start_hdfs_server):
    """HDFS applies its own umask (fs.permissions.umask-mode, here 077); what HDFS records is the session's
    (SITE UMASK, 022 by default): for new files, overwritten files and new directories alike."""
    server = start_hdfs_server("--hdfs-conf", "fs.permissions.umask-mode=077")
    with server.ftp() as ftp:
        upload(ftp, "default", b"d")
        ftp.mkd("default-dir")
        assert ftp.sendcmd("SITE UMASK 027").startswith("200")
        upload(ftp, "masked", b"m")
        upload(ftp, "default", b"overwritten")
        ftp.mkd("masked-dir")
        assert ftp.sendcmd("SITE UMASK 077").startswith("200")
        upload(ftp, "private", b"p")
    modes = {name: (server.stat(name)["mode"], server.stat(name)["owner"]) for name in server.ls()}
    me = server.user
    assert modes == {
        "default": ("640", me),
        "default-dir": ("755", me),
        "masked": ("640", me),
        "masked-dir": ("750", me),
        "private": ("600", me),
    }
    assert server.read("default") == b"overwritten"
    # The start-up log names HDFS's umask as an operator writes it.
    assert "; umask 077)" in server.log_text(), server.log_tail()


def test_start_log_names_the_umask_and_feat_offers_replication(hdfs_server):
    started = [line for line in hdfs_server.log_text().splitlines() if "HDFS storage:" in line]
    assert started and started[0].endswith("; umask 022)"), hdfs_server.log_tail()
    with hdfs_server.ftp() as ftp:
        mlst = [line for line in ftp.sendcmd("FEAT").splitlines() if line.strip().startswith("MLST ")]
        assert mlst and "x.hdfs.replication*;" in mlst[0], mlst
        assert ftp.sendcmd("OPTS MLST size;x.hdfs.replication;") == "200 MLST OPTS size;x.hdfs.replication;"


def test_an_upload_makes_no_namenode_call_after_its_create(hdfs_server, hdfs_cluster):
    """What the NameNode's audit log shows for STOR of a new 4 KiB file and for its overwrite. On hdfs:// the
    owner and mode HDFS gives a new file are known ahead: nothing looks at it after its create (no
    getfileinfo, setOwner or setPermission). An overwrite does not look at the directory (the existing
    file's parent is one). libhdfs's stat of an existing path is two calls, an exists and a getfileinfo."""
    home = f"/user/{hdfs_server.user}"
    target = f"{home}/small"
    with hdfs_server.ftp() as ftp:
        before = len(hdfs_cluster.audit(home, target))
        upload(ftp, "small", os.urandom(4096))
        created = hdfs_cluster.audit(home, target)[before:]
        upload(ftp, "small", os.urandom(4096))
        overwritten = hdfs_cluster.audit(home, target)[before + len(created):]
    stat_of = lambda path: [("getfileinfo", path)] * 2  # noqa: E731
    assert created == [("getfileinfo", target), *stat_of(home), ("create", target)]
    assert overwritten == [*stat_of(target), ("truncate", target), ("create", target)]
    assert (hdfs_server.stat("small")["owner"], hdfs_server.stat("small")["mode"]) == (hdfs_server.user, "644")


def test_another_users_home_is_refused_with_hdfs_reason(hdfs_server):
    """eve's home is /user; ann's home is hers, mode 0700: HDFS refuses eve, and says so."""
    hdfs_server.write("private.txt", b"ann's")
    with hdfs_server.ftp(hdfs_server.browser) as ftp:
        with pytest.raises(ftplib.error_perm) as read:
            download(ftp, f"{hdfs_server.user}/private.txt")
        with pytest.raises(ftplib.error_perm) as write:
            upload(ftp, f"{hdfs_server.user}/planted.txt", b"eve's")
        with pytest.raises(ftplib.error_perm) as listing:
            ftp.retrlines(f"LIST {hdfs_server.user}", lambda line: None)
    for refused in (read, write, listing):
        reply = str(refused.value)
        assert reply.startswith("550") and "ermission denied" in reply, reply
    assert not hdfs_server.cluster.exists(f"{hdfs_server.home()}/planted.txt")
    assert hdfs_server.read("private.txt") == b"ann's"


def test_append_and_resume_by_append(hdfs_server, tmp_path):
    with hdfs_server.ftp() as ftp:
        upload(ftp, "log", b"hello ")
        ftp.storbinary("APPE log", io.BytesIO(b"world"))
        assert download(ftp, "log") == b"hello world"
        # REST at the end of the file is a resume: an append.
        ftp.storbinary("STOR log", io.BytesIO(b"!!"), rest=11)
        assert download(ftp, "log") == b"hello world!!"
        # APPE of a new file creates it.
        ftp.storbinary("APPE new", io.BytesIO(b"fresh"))
        assert download(ftp, "new") == b"fresh"
    assert hdfs_server.read("log") == b"hello world!!"
    assert hdfs_server.read("new") == b"fresh"

    # curl resumes an interrupted upload with SIZE and APPE.
    full = os.urandom(2 * 1024 * 1024)
    hdfs_server.write("resumed", full[: len(full) // 3])
    source = tmp_path / "full"
    source.write_bytes(full)
    subprocess.run(["curl", "-sS", "-C", "-", "-T", str(source), hdfs_server.url("resumed")], check=True, timeout=120)
    assert hdfs_server.read("resumed") == full


def test_rest_stor_in_the_middle_is_refused(hdfs_server):
    with hdfs_server.ftp() as ftp:
        upload(ftp, "fixed", b"0123456789")
        with pytest.raises(ftplib.error_perm) as refused:
            ftp.storbinary("STOR fixed", io.BytesIO(b"xx"), rest=3)
        reply = str(refused.value)
        assert reply.startswith("554") and "can only be appended to" in reply and "REST 10" in reply, reply
        assert download(ftp, "fixed") == b"0123456789"
    assert hdfs_server.read("fixed") == b"0123456789"


# Runs in a child process that is killed in the middle of its upload.
SLOW_UPLOAD = """
import ftplib, sys, time
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(sys.argv[1]))
ftp.login(sys.argv[2], sys.argv[3])
ftp.voidcmd("TYPE I")
data = ftp.transfercmd("STOR " + sys.argv[4])
chunk = b"x" * 65536
for _ in range(16):
    data.sendall(chunk)
print("sent", flush=True)
while True:
    data.sendall(chunk)
    time.sleep(0.05)
"""


def kill_during_upload(server, name):
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_UPLOAD, str(server.port), server.user, PASSWORD, name],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "sent"
    time.sleep(0.5)
    child.send_signal(signal.SIGKILL)
    child.wait()
    # The server logs every transfer's end.
    wait_for(lambda: f"STOR /{name} " in server.log_text(), 60, "the server to end the killed upload")


def test_killed_upload_leaves_nothing_with_atomic_uploads(start_hdfs_server):
    server = start_hdfs_server("--atomic-uploads")
    kill_during_upload(server, "atomic.bin")
    assert "complete" not in server.log_text().split("STOR /atomic.bin ")[1].splitlines()[0]
    wait_for(lambda: server.ls() == [], 60, "the temporary file to be removed")
    with server.ftp() as ftp:
        assert ftp.nlst() == []


def test_killed_upload_leaves_the_partial_file_without_atomic_uploads(hdfs_server):
    kill_during_upload(hdfs_server, "partial.bin")
    in_hdfs = hdfs_server.stat("partial.bin")["size"]
    assert in_hdfs >= 16 * 65536
    with hdfs_server.ftp() as ftp:
        assert int(mlsd(ftp)["partial.bin"]["size"]) == in_hdfs
        listed = []
        ftp.retrlines("LIST", listed.append)
        assert str(in_hdfs) in listed[0].split() and listed[0].endswith("partial.bin")


def test_atomic_upload_replaces_the_target_when_complete(start_hdfs_server):
    server = start_hdfs_server("--atomic-uploads")
    with server.ftp() as ftp:
        upload(ftp, "report", b"old")
        upload(ftp, "report", b"new and longer")
        assert download(ftp, "report") == b"new and longer"
    assert server.ls() == ["report"]
    assert server.read("report") == b"new and longer"


def test_sigterm_closes_open_uploads(start_hdfs_server):
    """Bytes still buffered in the Java output stream reach the file only if it is closed at shutdown."""
    server = start_hdfs_server("--shutdown-grace", "1")
    ftp = server.ftp()
    ftp.voidcmd("TYPE I")
    data = ftp.transfercmd("STOR open.bin")
    payload = os.urandom(10_000)
    data.sendall(payload)
    wait_for(lambda: "open.bin" in server.ls(), 60, "the upload to start")
    time.sleep(1)
    assert server.stop(timeout=60) == 0
    assert "server shutting down" in server.log_text(), server.log_text()
    assert server.read("open.bin") == payload
    data.close()
    ftp.sock.close()


def test_ten_thousand_entries_list_completely(hdfs_server):
    hdfs_server.home().touch_many("f", 10_000)
    names = {f"f{i:05d}" for i in range(10_000)}
    with hdfs_server.ftp() as ftp:
        assert set(mlsd(ftp)) == names
        lines = []
        ftp.retrlines("LIST", lines.append)
    assert len(lines) == 10_000
    assert {line.split()[-1] for line in lines} == names


def test_directories_deletes_and_renames(start_hdfs_server):
    server = start_hdfs_server()
    with server.ftp() as ftp:
        assert ftp.mkd("d") == "/d"
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.mkd("d")
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.mkd("missing/child")
        upload(ftp, "d/f", b"x")
        assert server.stat("d")["type"] == "dir" and server.stat("d/f")["owner"] == server.user
        with pytest.raises(ftplib.error_perm, match="550.*not empty"):
            ftp.rmd("d")
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.delete("d")
        ftp.delete("d/f")
        assert server.cluster.ls(f"{server.home()}/d") == []
        ftp.rmd("d")
        assert server.ls() == []
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.delete("d")

        upload(ftp, "a", b"first")
        ftp.rename("a", "b")
        assert server.ls() == ["b"]
        upload(ftp, "c", b"second")
        with pytest.raises(ftplib.error_perm, match="550.*exists"):
            ftp.rename("b", "c")
        assert download(ftp, "c") == b"second"
        ftp.mkd("dir")
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.rename("b", "dir")
        assert sorted(ftp.nlst()) == ["b", "c", "dir"]
    assert server.ls() == ["b", "c", "dir"]
    assert server.read("c") == b"second"

    overwriting = start_hdfs_server("--hdfs-rename-overwrite")
    with overwriting.ftp() as ftp:
        upload(ftp, "b", b"first")
        upload(ftp, "c", b"second")
        ftp.rename("b", "c")
        assert ftp.nlst() == ["c"]
        assert download(ftp, "c") == b"first"
    assert overwriting.ls() == ["c"]
    assert overwriting.read("c") == b"first"


def test_site_chmod_is_visible_in_listings(hdfs_server):
    with hdfs_server.ftp() as ftp:
        upload(ftp, "f", b"x")
        assert ftp.sendcmd("SITE CHMOD 640 f").startswith("200")
        assert mlsd(ftp)["f"]["unix.mode"] == "0640"
        lines = []
        ftp.retrlines("LIST", lines.append)
        assert lines[0].startswith("-rw-r-----"), lines
    assert hdfs_server.stat("f")["mode"] == "640"


def test_size_mdtm_and_mfmt(hdfs_server):
    with hdfs_server.ftp() as ftp:
        upload(ftp, "f", b"12345")
        assert ftp.sendcmd("SIZE f") == "213 5"
        assert ftp.sendcmd("MFMT 20200102030405 f").startswith("213")
        assert ftp.sendcmd("MDTM f") == "213 20200102030405"
        assert mlsd(ftp)["f"]["modify"] == "20200102030405"
    expected = calendar.timegm((2020, 1, 2, 3, 4, 5)) * 1000
    assert hdfs_server.stat("f")["mtime_ms"] == expected


def run_server_expecting_failure(args, timeout=60):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert result.returncode > 0, f"exit {result.returncode} (negative: killed by a signal)\n{result.stderr}"
    assert "core dumped" not in result.stderr
    return result


# Start-up failures need no cluster: the class path and the JVM are checked before any filesystem is reached.
def base_args(program, tmp_path, class_path):
    users = tmp_path / "users"
    users.write_text(f"daemon:x:{tmp_path}:rw\n")
    return [
        str(program), "--bind", "127.0.0.1", "--ftp-port", str(free_port()), "--users-file", str(users), "--storage", "hdfs",
        "--hdfs-uri", "file:///", "--hadoop-classpath", class_path,
    ]


def test_a_wrong_class_path_is_one_clear_error(hadoop_jars, tmp_path):
    for class_path, named in [(str(tmp_path), "hadoop-client-api"), ("/no/such/dir/*", "/no/such/dir")]:
        result = run_server_expecting_failure(base_args(BIN, tmp_path, class_path))
        errors = [line for line in result.stderr.splitlines() if line.startswith("hdfsftpd:")]
        assert len(errors) == 1 and "hadoop-classpath" in errors[0] and named in errors[0], result.stderr

    # Without commons-lang3 libhdfs would crash the process at its first Java error: refused beforehand.
    partial = tmp_path / "partial-jars"
    partial.mkdir()
    for jar in hadoop_jars.glob("*.jar"):
        if not jar.name.startswith("commons-lang3"):
            (partial / jar.name).symlink_to(jar)
    result = run_server_expecting_failure(base_args(BIN, tmp_path, str(partial)))
    assert "commons-lang3" in result.stderr and result.stderr.count("hdfsftpd:") == 1, result.stderr


def test_a_jvm_that_cannot_start_is_one_clear_error(hadoop_jars, tmp_path):
    args = base_args(BIN, tmp_path, f"{hadoop_jars}/*") + ["--jvm-opts", "-Xmx1k"]
    result = run_server_expecting_failure(args)
    # The JVM says why on stdout, and exits the process itself.
    assert "Too small maximum heap" in result.stdout + result.stderr, result


def test_a_heap_that_cannot_hold_max_clients_uploads_is_refused_at_start_with_the_numbers(hadoop_jars, tmp_path):
    args = base_args(BIN, tmp_path, f"{hadoop_jars}/*") + ["--jvm-opts", "-Xmx64m", "--max-clients", "200"]
    result = run_server_expecting_failure(args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("hdfsftpd:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("hdfsftpd: jvm-opts: the JVM's heap (64 MiB) cannot hold --max-clients 200 uploads"), errors
    assert "8 packets of 64 KiB" in errors[0] and "333 MiB in all" in errors[0], errors


def test_a_missing_jvm_is_one_clear_error(hadoop_jars, tmp_path):
    """A copy of the binary whose run path to libjvm.so leads nowhere, as after the JDK is removed."""
    image = binary().read_bytes()
    jvm_dir = subprocess.run(["readelf", "-d", str(BIN)], capture_output=True, text=True, check=True).stdout
    jvm_dir = jvm_dir.split("runpath: [")[1].split("]")[0].encode()
    assert image.count(jvm_dir) == 1
    moved = tmp_path / "hdfsftpd"
    moved.write_bytes(image.replace(jvm_dir, b"/" + b"x" * (len(jvm_dir) - 1)))
    moved.chmod(0o755)
    result = run_server_expecting_failure(base_args(moved, tmp_path, f"{hadoop_jars}/*"))
    assert "libjvm.so" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


class SlowUpload:
    """A STOR whose data arrive in chunks the test sends one by one, so it can act while HDFS holds the
    file open (its lease) and the gateway holds the output stream."""

    def __init__(self, server, name, user=None):
        self.ftp = server.ftp(user)
        self.ftp.voidcmd("TYPE I")
        self.data = self.ftp.transfercmd(f"STOR {name}")
        self.sent = b""

    def send(self, chunk):
        self.data.sendall(chunk)
        self.sent += chunk

    def finish(self):
        self.data.close()
        reply = self.ftp.voidresp()
        self.ftp.quit()
        return reply


def test_a_second_upload_to_a_file_being_written_is_refused_and_the_first_is_intact(hdfs_server):
    """HDFS gives a file being written to one writer (its lease): the second client is told, clearly, and
    the first client's file is complete. (HDFS's own create would delete the file under the first.)"""
    first = SlowUpload(hdfs_server, "contended.bin")
    first.send(os.urandom(1 << 20))
    wait_for(lambda: "contended.bin" in hdfs_server.ls(), 60, "the first upload to create the file")
    with hdfs_server.ftp(hdfs_server.user) as second:
        with pytest.raises(ftplib.Error) as refused:
            upload(second, "contended.bin", b"the second client's bytes")
    reply = str(refused.value)
    assert reply.startswith("450 /contended.bin: File busy: another client is writing it (HDFS lease)"), reply
    first.send(os.urandom(3 << 20))
    assert first.finish().startswith("226")
    assert hdfs_server.read("contended.bin") == first.sent
    assert hdfs_server.stat("contended.bin")["owner"] == hdfs_server.user


def test_atomic_uploads_never_show_a_partial_file(start_hdfs_server):
    """With --atomic-uploads a reader polling the directory, through the gateway and in HDFS itself, sees
    the file either not at all or whole."""
    server = start_hdfs_server("--atomic-uploads")
    with server.ftp() as ftp:
        upload(ftp, "published.bin", b"the old version")
    uploading = SlowUpload(server, "published.bin")
    seen = []
    with server.ftp() as reader:
        for _ in range(6):
            uploading.send(os.urandom(512 * 1024))
            # What the gateway lists: the old file, and no temporary file.
            assert sorted(reader.nlst()) == ["published.bin"]
            assert reader.size("published.bin") == len(b"the old version")
            # What HDFS holds under the name: the old file, whole.
            seen.append(server.read("published.bin"))
        assert uploading.finish().startswith("226")
        assert reader.size("published.bin") == len(uploading.sent)
    assert set(seen) == {b"the old version"}
    assert server.read("published.bin") == uploading.sent
    assert server.ls() == ["published.bin"]
