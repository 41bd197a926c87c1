"""The gateway's memory on a real HDFS does not depend on what clients do (issue #20, items 4 and 5).

- A directory far larger than the JVM's heap could hold materialised (ENTRIES entries, a 64 MiB heap) is
  listed completely by LIST, NLST, MLSD and STAT: HDFS's entries are streamed in batches of `dfs.ls.limit`
  as the client reads them, the first line comes at once, and another session's transfer meanwhile is
  intact. (With libhdfs's hdfsListDirectory, which holds the whole directory, each of them answered
  `451 OutOfMemoryError: Java heap space`.)
- A session whose upload exhausts the heap gets a 451 naming the OutOfMemoryError and goes on; the other
  sessions' uploads that complete are intact, and new sessions work afterwards.

Servers run on the session's shared cluster with a heap of their own; what HDFS recorded is read through
the cluster's own Hadoop API.
"""

import ftplib
import hashlib
import io
import os
import threading
import time

import pytest

from harness import open_transfer
from hdfs_fixtures import hadoop_jars, start_hdfs_server  # noqa: F401  (fixtures are found by name)

ENTRIES = 300_000
SMALL_HEAP = "-Xmx64m"
# The first line of a listing comes after one NameNode call (a batch); generous for a loaded machine.
FIRST_LINE_WITHIN = 10.0


def with_heap(cluster, heap):
    """The cluster's JVM options for the gateway with HEAP (-Xmx...) instead of its own."""
    options = [o for o in cluster.env["HDFSFTPD_JVM_OPTS"].split() if not o.startswith("-Xmx")]
    return " ".join([*options, heap])


def read_listing(data):
    """(seconds to the first complete line, every line) of a listing's data connection."""
    started, first_line, received = time.monotonic(), None, bytearray()
    while chunk := data.recv(1 << 20):
        received += chunk
        if first_line is None and b"\r\n" in received:
            first_line = time.monotonic() - started
    data.close()
    return first_line, received.decode().split("\r\n")[:-1]


def round_trip(server, name, payload, results):
    """Another session: STOR then RETR of PAYLOAD; what came back, into RESULTS."""
    client = server.ftp()
    client.voidcmd("TYPE I")
    client.storbinary(f"STOR {name}", io.BytesIO(payload))
    back = bytearray()
    client.retrbinary(f"RETR {name}", back.extend)
    client.quit()
    results[name] = bytes(back)


@pytest.fixture
def huge_directory(small_heap_server):
    """ENTRIES empty directories e0000000... in `huge` of the user's home; removed afterwards."""
    path = f"{small_heap_server.home()}/huge"
    small_heap_server.cluster.ctl("entries", path, ENTRIES)
    yield "huge"
    small_heap_server.cluster.ctl("rm", path)


@pytest.fixture
def small_heap_server(start_hdfs_server, hdfs_cluster):
    return start_hdfs_server("--jvm-opts", with_heap(hdfs_cluster, SMALL_HEAP), "--max-clients", "4")


def test_a_directory_larger_than_the_heap_is_listed_completely_by_list_nlst_mlsd_and_stat(small_heap_server,
                                                                                        huge_directory):
    server = small_heap_server
    expected = {f"e{i:07d}" for i in range(ENTRIES)}
    payload = os.urandom(8 << 20)
    client = server.ftp()
    for command, name_of in (
        ("LIST", lambda line: line.split()[-1]),
        ("NLST", lambda line: line.rsplit("/", 1)[-1]),
        ("MLSD", lambda line: line.split(" ", 1)[1]),
    ):
        others = {}
        data = open_transfer(client, f"{command} {huge_directory}")
        # Another session moves a file while the listing streams.
        other = threading.Thread(target=round_trip, args=(server, f"other-{command}", payload, others))
        other.start()
        first_line, lines = read_listing(data)
        reply = client.getresp()
        other.join()
        assert reply.startswith("226"), (command, reply)
        assert first_line is not None and first_line < FIRST_LINE_WITHIN, (command, first_line)
        names = [name_of(line) for line in lines]
        assert len(names) == ENTRIES and set(names) == expected, (command, len(names))
        if command == "LIST":
            assert all(line.startswith("drwxr-xr-x") for line in lines[:10]), lines[:10]
        if command == "MLSD":
            assert all(line.startswith("type=dir;") for line in lines[:10]), lines[:10]
        name = f"other-{command}"
        assert hashlib.sha256(others[name]).digest() == hashlib.sha256(payload).digest(), command
        assert server.read(name) == payload
    # STAT lists over the control connection, as a multi-line reply sent as it is made.
    client.putcmd(f"STAT {huge_directory}")
    lines = [client.getline()]
    while not lines[-1].startswith("213 "):
        lines.append(client.getline())
    assert lines[0] == f"213-Status of /{huge_directory}:" and lines[-1] == "213 End of status", (lines[0], lines[-1])
    assert {line.split()[-1] for line in lines[1:-1]} == expected and len(lines) == ENTRIES + 2
    client.quit()


def upload_raw(server, name, payload):
    """STOR of PAYLOAD in a session of its own over a raw data connection, so that a server that stops
    reading midway still has its reply read: (the reply, whether the control connection still answers)."""
    client = server.ftp()
    client.voidcmd("TYPE I")
    data = open_transfer(client, f"STOR {name}")
    try:
        data.sendall(payload)
    except OSError:
        pass  # the server gave up on the upload: its reply says why
    data.close()
    try:
        reply = client.getresp()
    except ftplib.Error as error:
        reply = str(error)
    alive = client.sendcmd("NOOP").startswith("200")
    client.quit()
    return reply, alive


def test_a_session_that_runs_the_heap_out_gets_451_and_the_others_and_later_sessions_go_on(start_hdfs_server,
                                                                                          hdfs_cluster):
    # An administrator's packets of 128 MiB cannot fit a 64 MiB heap: the server says so at start and keeps
    # them. Hadoop allocates an upload's packet at its first write, so every upload then runs out of heap,
    # in its own session's thread, while downloads (which need no packet) go on.
    server = start_hdfs_server("--jvm-opts", with_heap(hdfs_cluster, SMALL_HEAP), "--max-clients", "4",
                               "--max-per-ip", "0", "--hdfs-conf", "dfs.client-write-packet-size=134217728",
                               "--hdfs-conf", "dfs.client.write.max-packets-in-flight=80")
    assert "cannot hold --max-clients 4 uploads at once" in server.log_text()
    payload = os.urandom(16 << 20)
    server.write("existing.bin", payload)
    downloads = {}

    def download(name):
        client = server.ftp()
        client.voidcmd("TYPE I")
        received = bytearray()
        client.retrbinary("RETR existing.bin", received.extend)
        client.quit()
        downloads[name] = bytes(received)

    others = [threading.Thread(target=download, args=(f"during-{i}",)) for i in range(2)]
    for thread in others:
        thread.start()
    reply, alive = upload_raw(server, "upload.bin", os.urandom(8 << 20))
    for thread in others:
        thread.join()
    assert reply.startswith("451 ") and "OutOfMemoryError: Java heap space" in reply, reply
    assert alive, "the session goes on after its failed upload"
    assert downloads == {"during-0": payload, "during-1": payload}

    # The JVM and its Hadoop client still serve new sessions.
    download("after")
    assert downloads["after"] == payload
    client = server.ftp()
    assert client.sendcmd("MKD made-after").startswith("257")
    assert {"existing.bin", "made-after"} <= set(client.nlst())
    client.quit()
    assert server.stat("made-after")["type"] == "dir"
