"""Kerberos end to end on a secure HDFS: `scripts/hdfs-cluster.sh start --secure` runs a NameNode and
DataNodes with hadoop.security.authentication=kerberos, keyed in a throwaway MIT KDC (tests/kdc.py, the
realm the Kerberos login tests use), and hdfsftpd checks users' passwords against the same KDC
(--auth krb5). Each session reaches HDFS with its own ticket cache; what HDFS recorded and refused is read
through the cluster's Hadoop API (as the cluster's own principal), not through the gateway."""

import ftplib
import io
import os
import time

import pytest

from gss_client import GssFtp, read_all
from harness import Daemon, free_port, krb5_auth_args, listen_args, users_auth_args, wait_for, write_users_file
from hdfs_cluster import HdfsCluster, HdfsPath
from kdc import Realm

USERS = {"kalice": "kalice-secret", "kbob": "kbob-secret"}


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory):
    with HdfsCluster.running(tmp_path_factory, "secure-hdfs", "--secure") as cluster:
        for name, password in USERS.items():
            cluster.add_user(name, password)
        yield cluster


@pytest.fixture
def krb_hdfs_server(secure_cluster, tmp_path):
    """Factory: a started hdfsftpd with --auth krb5 (or the given auth arguments) on the secure cluster."""
    servers = []

    def start(*extra_args, auth_args=None, users=USERS):
        ccaches = tmp_path / f"ccaches{len(servers)}"
        ccaches.mkdir(mode=0o700)
        port = free_port()
        env = secure_cluster.env
        # The gateway's key and principal as cluster.env gives them.
        auth = auth_args or krb5_auth_args(env["HDFSFTPD_KRB5_KEYTAB"], env["HDFSFTPD_KRB5_SERVICE"], ccaches)
        args = [*listen_args(port), *secure_cluster.server_args(), *auth, "--login-fail-delay", "0", *extra_args]
        homes = {name: HdfsPath(secure_cluster, f"/user/{name}", name, tmp_path) for name in users}
        server = Daemon(tmp_path / f"server{len(servers)}", args, port=port, users=dict(users), homes=homes,
                        env={"KRB5_CONFIG": env["KRB5_CONFIG"]}, client_timeout=120)
        server.ccaches = ccaches
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        assert server.stop() == 0, server.log_tail()


def caches(server):
    return sorted(server.ccaches.iterdir())


def test_files_of_a_kerberos_login_belong_to_that_user_in_hdfs(krb_hdfs_server, secure_cluster):
    server = krb_hdfs_server()
    payload = os.urandom(300_000)
    with server.ftp("kalice") as ftp:
        ftp.storbinary("STOR signed.bin", io.BytesIO(payload))
        ftp.mkd("made")
        [cache] = caches(server)
        assert cache.name.startswith("kalice-")
    status = secure_cluster.stat("/user/kalice/signed.bin")
    assert (status["owner"], status["size"]) == ("kalice", len(payload))
    assert secure_cluster.stat("/user/kalice/made")["owner"] == "kalice"
    assert secure_cluster.read("/user/kalice/signed.bin", server.workdir) == payload
    # Ticket caches are gone after logout.
    wait_for(lambda: caches(server) == [], 10, "the ticket cache to be destroyed at logout")


def test_hdfs_refuses_what_the_sessions_own_ticket_may_not_touch(krb_hdfs_server, secure_cluster):
    """A directory in kalice's home that belongs to kbob, mode 0700: with kalice's ticket HDFS says no."""
    secure_cluster.ctl("mkdir", "/user/kalice/kbobs", "kbob", "700")
    server = krb_hdfs_server()
    with server.ftp("kalice") as ftp:
        for attempt in (lambda: ftp.storbinary("STOR kbobs/planted", io.BytesIO(b"x")),
                        lambda: ftp.retrlines("LIST kbobs", lambda line: None),
                        lambda: ftp.mkd("kbobs/sub")):
            with pytest.raises(ftplib.error_perm) as refused:
                attempt()
            reply = str(refused.value)
            assert reply.startswith("550") and "ermission denied" in reply and "kalice" in reply, reply
        # Her own files are fine on the same session.
        ftp.storbinary("STOR mine", io.BytesIO(b"mine"))
    assert secure_cluster.ls("/user/kalice/kbobs") == []
    assert secure_cluster.stat("/user/kalice/mine")["owner"] == "kalice"


def test_a_session_without_a_ticket_is_refused_by_the_cluster(krb_hdfs_server, tmp_path):
    """Users-file logins have no ticket: libhdfs tries simple authentication, which the secure cluster
    refuses when the session first reaches HDFS (its home, at login). The client gets a 530 with HDFS's
    reason, and so does the log."""
    users_file = write_users_file(tmp_path / "users", {"kalice": ("pw", "", "rw")})
    server = krb_hdfs_server(auth_args=users_auth_args(users_file), users={"kalice": "pw"})
    client = server.ftp(login=False)
    with pytest.raises(ftplib.error_perm) as refused:
        client.login("kalice", "pw")
    reply = str(refused.value)
    assert reply.startswith("530 ") and "Client cannot authenticate via:[TOKEN, KERBEROS]" in reply, reply
    client.close()
    server.wait_for_log(r"Client cannot authenticate via:\[TOKEN, KERBEROS\]")


def test_an_expiring_ticket_lets_the_running_download_finish_then_gets_530(krb_hdfs_server, secure_cluster):
    realm = Realm(secure_cluster.dir / "kdc", secure_cluster.env["HDFS_CLUSTER_REALM"])
    realm.add_user("kbrief", "kbrief-secret", maxlife="15 seconds")
    secure_cluster.ctl("home", "kbrief")
    payload = os.urandom(32 << 20)
    secure_cluster.write("/user/kbrief/long.bin", payload, secure_cluster.dir, owner="kbrief")
    server = krb_hdfs_server(users={"kbrief": "kbrief-secret"})
    ftp = server.ftp("kbrief")
    logged_in = time.monotonic()
    ftp.voidcmd("TYPE I")
    data = ftp.transfercmd("RETR long.bin")
    received = bytearray(data.recv(1 << 20))
    # The client holds the transfer until the ticket has expired, then reads the rest.
    time.sleep(max(0.0, 17 - (time.monotonic() - logged_in)))
    while chunk := data.recv(1 << 20):
        received += chunk
    data.close()
    assert ftp.voidresp().startswith("226")
    assert bytes(received) == payload
    with pytest.raises(ftplib.error_perm) as refused:
        ftp.nlst()
    assert str(refused.value).startswith("530") and "expired" in str(refused.value), refused.value
    wait_for(lambda: caches(server) == [], 10, "the expired ticket cache to be destroyed")
    ftp.close()


def test_gssapi_login_moves_files_as_the_user_with_the_delegated_ticket(krb_hdfs_server, secure_cluster, tmp_path,
                                                                        monkeypatch):
    """Single sign-on (AUTH GSSAPI): no password; the TGT kalice delegates is the session's ticket cache,
    so HDFS records her as the owner of what she uploads."""
    realm = Realm(secure_cluster.dir / "kdc", secure_cluster.env["HDFS_CLUSTER_REALM"])
    ticket = tmp_path / "kalice.ccache"
    realm.kinit("kalice", USERS["kalice"], ticket, forwardable=True)
    monkeypatch.setenv("KRB5_CONFIG", secure_cluster.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ticket}")
    server = krb_hdfs_server()
    ftp = GssFtp(server.port)
    code, text = ftp.login("kalice")
    assert code == 232, text
    [cache] = caches(server)
    assert cache.name.startswith("kalice-")
    for command in ("PBSZ 262144", "PROT P", "TYPE I"):
        assert ftp.send(command)[0] == 200
    payload = os.urandom(500_000)
    assert ftp.stor("sso.bin", payload)[0] == 226
    assert ftp.send("MKD sso-dir")[0] == 257
    assert ftp.retr("sso.bin") == payload
    listing = ftp.data_connection()
    assert ftp.send("NLST")[0] == 150
    assert sorted(ftp.unblock(read_all(listing)).decode().split()) == ["sso-dir", "sso.bin"]
    assert ftp.reply()[0] == 226
    assert ftp.send("QUIT")[0] == 221
    ftp.close()
    status = secure_cluster.stat("/user/kalice/sso.bin")
    assert (status["owner"], status["size"]) == ("kalice", len(payload))
    assert secure_cluster.stat("/user/kalice/sso-dir")["owner"] == "kalice"
    assert secure_cluster.read("/user/kalice/sso.bin", server.workdir) == payload
    wait_for(lambda: caches(server) == [], 10, "the delegated ticket's cache to be destroyed at logout")
