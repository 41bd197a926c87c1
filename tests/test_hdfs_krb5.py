"""Kerberos end to end on a secure HDFS: `scripts/cluster/hdfs-cluster.sh start --secure` runs a NameNode and
DataNodes with hadoop.security.authentication=kerberos, keyed in a throwaway MIT KDC (tests/kdc.py, the
realm the Kerberos login tests use), and hdfsftpd checks users' passwords against the same KDC
(--auth krb5). Each session reaches HDFS with its own ticket cache; what HDFS recorded and refused is read
through the cluster's Hadoop API (as the cluster's own principal), not through the gateway.

Users-file logins reach the same cluster through impersonation (--hdfs-proxy-user): the gateway's own
keytab login (ftp/localhost) acts for them, as far as the NameNode's proxy-user rules
(`ctl proxy-users`, hadoop.proxyuser.ftp.*) allow; the NameNode's audit log shows who acted for whom."""

import ftplib
import io
import os
import subprocess
import time

import pytest

from gss_client import GssFtp, read_all
from harness import BIN, Daemon, free_port, krb5_auth_args, listen_args, users_auth_args, wait_for, write_users_file
from hdfs_cluster import HdfsCluster, HdfsPath
from kdc import Realm

USERS = {"kalice": "kalice-secret", "kbob": "kbob-secret"}


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory):
    with HdfsCluster.running(tmp_path_factory, "secure-hdfs", "--secure", "--audit") as cluster:
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
        storage = secure_cluster.server_args()
        for flag in set(storage) & set(extra_args):  # a flag is given once: the test's replaces the cluster's
            at = storage.index(flag)
            del storage[at:at + 2]
        args = [*listen_args(port), *storage, *auth, "--login-fail-delay", "0", *extra_args]
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


# ---------------------------------------------------------------------------------------------------
# Impersonation: users-file logins act through the gateway's keytab (--hdfs-proxy-user).

PROXY_USERS = {"kalice": "pa", "kbob": "pb", "kmallory": "pm"}


def proxy_args(cluster, principal=None, keytab=None):
    env = cluster.env
    return ["--hdfs-proxy-user", principal or env["HDFSFTPD_KRB5_SERVICE"],
            "--hdfs-keytab", str(keytab or env["HDFSFTPD_KRB5_KEYTAB"])]


@pytest.fixture
def proxy_server(krb_hdfs_server, secure_cluster, tmp_path):
    """Factory: hdfsftpd with a users file (PROXY_USERS) acting through the gateway's keytab; the NameNode
    lets ftp act for kalice and kbob only, and kmallory has a home (and a principal) but no such rule."""
    if not secure_cluster.exists("/user/kmallory"):
        secure_cluster.add_user("kmallory", "kmallory-secret")
    secure_cluster.ctl("proxy-users", "ftp", "kalice,kbob")
    users_file = write_users_file(tmp_path / "proxy-users", {name: (pw, "", "rw") for name, pw in PROXY_USERS.items()})

    def start(*extra_args, gateway=None):
        return krb_hdfs_server(*(gateway or proxy_args(secure_cluster)), "--log-level", "debug", *extra_args,
                               auth_args=users_auth_args(users_file), users=PROXY_USERS)

    return start


def creators(cluster, path):
    """Who the NameNode's audit log says created PATH (the ugi= of its cmd=create lines)."""
    calls = (dict(field.split("=", 1) for field in line.split("\t") if "=" in field)
             for line in (cluster.dir / "audit.log").read_text().splitlines())
    return {call["ugi"] for call in calls if call.get("cmd") == "create" and call.get("src") == path}


def test_a_users_file_login_moves_files_as_itself_through_the_gateway(proxy_server, secure_cluster):
    server = proxy_server()
    payload = os.urandom(200_000)
    with server.ftp("kalice") as ftp:
        ftp.storbinary("STOR proxied.bin", io.BytesIO(payload))
        ftp.mkd("proxied-dir")
        assert {"proxied-dir", "proxied.bin"} <= set(ftp.nlst())  # kalice's home is the module's
        received = bytearray()
        ftp.retrbinary("RETR proxied.bin", received.extend)
        assert bytes(received) == payload
    with server.ftp("kbob") as ftp:
        ftp.storbinary("STOR bobs", io.BytesIO(b"bob"))
    status = secure_cluster.stat("/user/kalice/proxied.bin")
    assert (status["owner"], status["size"]) == ("kalice", len(payload))
    assert secure_cluster.stat("/user/kalice/proxied-dir")["owner"] == "kalice"
    assert secure_cluster.stat("/user/kbob/bobs")["owner"] == "kbob"
    assert secure_cluster.read("/user/kalice/proxied.bin", server.workdir) == payload
    realm = secure_cluster.env["HDFS_CLUSTER_REALM"]
    assert creators(secure_cluster, "/user/kalice/proxied.bin") == {
        f"kalice (auth:PROXY) via ftp/localhost@{realm} (auth:KERBEROS)"}


def test_a_user_the_namenodes_rules_refuse_gets_530_with_the_reason_logged(proxy_server, secure_cluster):
    server = proxy_server()
    client = server.ftp(login=False)
    with pytest.raises(ftplib.error_perm) as refused:
        client.login("kmallory", "pm")
    reply = str(refused.value)
    assert reply.startswith("530 ") and "is not allowed to impersonate kmallory" in reply, reply
    client.close()
    server.wait_for_log(r"login kmallory: cannot open storage as kmallory: .*"
                        r"User: ftp/localhost@\S+ is not allowed to impersonate kmallory")
    # The gateway goes on serving the users it may act for.
    with server.ftp("kbob") as ftp:
        assert ftp.pwd() == "/"
    assert not secure_cluster.ls("/user/kmallory")


def test_the_gateways_ticket_is_renewed_from_its_keytab_without_ending_sessions(proxy_server, secure_cluster,
                                                                                tmp_path):
    """A gateway principal whose tickets live 25 s, and Hadoop allowed to log in again after 1 s (its
    default is a minute): kalice's session outlives the gateway's first ticket (her NameNode connection,
    idle for more than 10 s, is made again), and kbob logs in after it expired; both reach HDFS because
    the ticket was renewed from the keytab in between."""
    realm = Realm(secure_cluster.dir / "kdc", secure_cluster.env["HDFS_CLUSTER_REALM"])
    keytab = tmp_path / "gw.keytab"
    realm.add_service("gw/localhost", keytab)
    realm.kadmin('modprinc -maxlife "25 seconds" gw/localhost')
    os.chmod(keytab, 0o600)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "hdfs-site.xml").write_text((secure_cluster.dir / "conf" / "hdfs-site.xml").read_text())
    core = (secure_cluster.dir / "conf" / "core-site.xml").read_text()
    relogin = "<property><name>hadoop.kerberos.min.seconds.before.relogin</name><value>1</value></property>"
    (conf / "core-site.xml").write_text(core.replace("</configuration>", relogin + "</configuration>"))
    secure_cluster.ctl("proxy-users", "gw", "kalice,kbob")
    try:
        server = proxy_server("--hadoop-conf-dir", str(conf),
                              gateway=proxy_args(secure_cluster, f"gw/localhost@{realm.name}", keytab))
        started = time.monotonic()
        ftp = server.ftp("kalice")
        ftp.storbinary("STOR before", io.BytesIO(b"before"))
        time.sleep(max(0.0, 29 - (time.monotonic() - started)))
        ftp.storbinary("STOR after", io.BytesIO(b"after"))
        ftp.quit()
        with server.ftp("kbob") as late:
            late.storbinary("STOR late", io.BytesIO(b"late"))
    finally:
        secure_cluster.ctl("proxy-users", "ftp", "kalice,kbob")
    assert secure_cluster.stat("/user/kalice/after")["owner"] == "kalice"
    assert secure_cluster.stat("/user/kbob/late")["owner"] == "kbob"
    assert creators(secure_cluster, "/user/kbob/late") == {
        f"kbob (auth:PROXY) via gw/localhost@{realm.name} (auth:KERBEROS)"}


@pytest.mark.parametrize("case", ["no keytab", "keytab readable by others", "local storage", "keytab alone",
                                  "principal not in the keytab"])
def test_impersonation_flags_are_checked_at_start(secure_cluster, tmp_path, case):
    keytab = tmp_path / "gw.keytab"
    keytab.write_bytes(open(secure_cluster.env["HDFSFTPD_KRB5_KEYTAB"], "rb").read())
    keytab.chmod(0o644 if case == "keytab readable by others" else 0o600)
    principal = secure_cluster.env["HDFSFTPD_KRB5_SERVICE"]
    storage = ["--storage", "local", "--local-root", str(tmp_path)] if case == "local storage" \
        else secure_cluster.server_args()
    flags = {
        "no keytab": ["--hdfs-proxy-user", principal],
        "keytab readable by others": ["--hdfs-proxy-user", principal, "--hdfs-keytab", str(keytab)],
        "local storage": ["--hdfs-proxy-user", principal, "--hdfs-keytab", str(keytab)],
        "keytab alone": ["--hdfs-keytab", str(keytab)],
        "principal not in the keytab": ["--hdfs-proxy-user", "nosuch/localhost", "--hdfs-keytab", str(keytab)],
    }[case]
    expected = {
        "no keytab": "hdfs-keytab: required with --hdfs-proxy-user",
        "keytab readable by others": "mode 644: others than its owner may read or change the gateway's key",
        "local storage": "hdfs-proxy-user: only with --storage hdfs",
        "keytab alone": "hdfs-keytab: only with --hdfs-proxy-user",
        "principal not in the keytab": "hdfs-proxy-user: nosuch/localhost: LoginException: ",
    }[case]
    users_file = write_users_file(tmp_path / "users", {"kalice": ("pa", "", "rw")})
    env = {**os.environ, "KRB5_CONFIG": secure_cluster.env["KRB5_CONFIG"]}
    result = subprocess.run([str(BIN), *listen_args(free_port()), *users_auth_args(users_file), *storage, *flags],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0 and expected in result.stderr, result.stderr

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
    assert {"sso-dir", "sso.bin"} <= set(ftp.unblock(read_all(listing)).decode().split())  # the module's home
    assert ftp.reply()[0] == 226
    assert ftp.send("QUIT")[0] == 221
    ftp.close()
    status = secure_cluster.stat("/user/kalice/sso.bin")
    assert (status["owner"], status["size"]) == ("kalice", len(payload))
    assert secure_cluster.stat("/user/kalice/sso-dir")["owner"] == "kalice"
    assert secure_cluster.read("/user/kalice/sso.bin", server.workdir) == payload
    wait_for(lambda: caches(server) == [], 10, "the delegated ticket's cache to be destroyed at logout")


def test_gssapi_login_without_delegation_acts_through_the_gateway(krb_hdfs_server, secure_cluster, tmp_path,
                                                                  monkeypatch):
    """Single sign-on without a delegated ticket, on a server with --hdfs-proxy-user: the session has no
    ticket cache of its own and reaches HDFS as its user through the gateway's impersonation."""
    secure_cluster.ctl("proxy-users", "ftp", "kalice,kbob")
    realm = Realm(secure_cluster.dir / "kdc", secure_cluster.env["HDFS_CLUSTER_REALM"])
    ticket = tmp_path / "kalice-plain.ccache"
    realm.kinit("kalice", USERS["kalice"], ticket)
    monkeypatch.setenv("KRB5_CONFIG", secure_cluster.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ticket}")
    server = krb_hdfs_server(*proxy_args(secure_cluster))
    ftp = GssFtp(server.port, delegate=False)
    code, text = ftp.login("kalice")
    assert code == 232, text
    assert caches(server) == []
    for command in ("PBSZ 262144", "PROT P", "TYPE I"):
        assert ftp.send(command)[0] == 200
    payload = os.urandom(300_000)
    assert ftp.stor("sso-proxied.bin", payload)[0] == 226
    assert ftp.retr("sso-proxied.bin") == payload
    assert ftp.send("QUIT")[0] == 221
    ftp.close()
    assert secure_cluster.stat("/user/kalice/sso-proxied.bin")["owner"] == "kalice"
    realm_name = secure_cluster.env["HDFS_CLUSTER_REALM"]
    assert creators(secure_cluster, "/user/kalice/sso-proxied.bin") == {
        f"kalice (auth:PROXY) via ftp/localhost@{realm_name} (auth:KERBEROS)"}
