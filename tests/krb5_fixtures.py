"""Fixtures for the Kerberos login tests: a real MIT KDC (tests/kdc.py) and harness.Daemon running the real
server binary with `--auth krb5`, on local storage or HDFS over file:///, driven by ftplib.

    realm -> a running realm with USERS and MANY, the server's keytab at realm.keytab
    krb_server(*extra_args, keytab=None, env_realm=None, storage="local") -> a started Daemon; homes
        <root>/<user> exist for every user of the realm; all are stopped at teardown
    ticket_caches(server), ccache_dir(server) -> the server's ticket cache directory and the caches now in it
"""

import pytest

from harness import Daemon, free_port, hdfs_storage_args, krb5_auth_args, listen_args, local_storage_args
from kdc import Realm

REALM = "HDFSFTPD.TEST"
SERVICE = "ftp/localhost"

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
MANY = {f"user{i:02d}": f"secret-{i:02d}" for i in range(16)}


@pytest.fixture
def realm(tmp_path):
    """A running realm with USERS and MANY, and the server's keytab at realm.keytab."""
    realm = Realm(tmp_path / "kdc", REALM).start()
    try:
        realm.add_users({**USERS, **MANY})
        realm.keytab = realm.add_service(SERVICE, realm.dir / "ftp.keytab")
        yield realm
    finally:
        realm.stop()


def krb5_daemon(workdir, realm, extra_args=(), keytab=None, env_realm=None, storage="local"):
    """A Daemon (not started) that checks passwords against `realm` (the KDC it is told of is env_realm's,
    when given) with the service key in `keytab` (realm.keytab by default)."""
    root = workdir / "root"
    users = {**USERS, **MANY}
    homes = {user: root / user for user in users}
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage_args = local_storage_args(root) if storage == "local" else hdfs_storage_args(f"{root}/%u")
    args = [
        *listen_args(port), *storage_args,
        *krb5_auth_args(realm.keytab if keytab is None else keytab, SERVICE, workdir / "ccaches"),
        "--login-fail-delay", "0.5", "--log-level", "debug", *extra_args,
    ]
    return Daemon(workdir, args, port=port, env=(env_realm or realm).env, users=users, homes=homes, root=root)


def ccache_dir(server):
    return server.workdir / "ccaches"


def ticket_caches(server):
    """Ticket cache files now in the server's cache directory."""
    return sorted(ccache_dir(server).iterdir()) if ccache_dir(server).exists() else []


@pytest.fixture
def krb_server(tmp_path, realm):
    """Factory: krb_server(*extra_args, keytab=None, env_realm=None, storage="local") starts a krb5_daemon;
    all stop at teardown."""
    servers = []

    def make(*extra_args, keytab=None, env_realm=None, storage="local"):
        server = krb5_daemon(tmp_path / f"server{len(servers)}", realm, extra_args, keytab, env_realm, storage)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
