"""Kerberos login (--auth krb5) against a real MIT KDC, with the real server and ftplib clients."""

import ftplib
import io
import os
import stat
import threading
import time

import pytest

from conftest import BIN, run, wait_for
from kdc import Realm
from krb5_fixtures import (  # noqa: F401  (krb_server and realm: fixtures, found by name)
    MANY, REALM, SERVICE, USERS, ccache_dir, krb_server, realm, ticket_caches,
)

AUTH_TIMEOUT = 2
FAIL_DELAY = 0.5


def login_error(server, user, password, source=None):
    """The error reply a login gets, and how long it took."""
    ftp = server.ftp(source=source, login=False)
    started = time.monotonic()
    try:
        with pytest.raises(ftplib.Error) as failed:
            ftp.login(user, password)
    finally:
        ftp.close()
    return str(failed.value), time.monotonic() - started


def wait_caches_gone(server, timeout=10):
    wait_for(lambda: not ticket_caches(server), timeout, f"ticket caches to go: {ticket_caches(server)}")


STORAGES = ["local", "hdfs"]


def transfer_through_storage(server, ftp):
    """A round trip that makes the session touch its storage (HDFS: with the session's ticket cache)."""
    payload = os.urandom(100_000)
    ftp.storbinary("STOR krb.bin", io.BytesIO(payload))
    got = io.BytesIO()
    ftp.retrbinary("RETR krb.bin", got.write)
    assert got.getvalue() == payload
    assert (server.root / "alice" / "krb.bin").read_bytes() == payload


@pytest.mark.parametrize("storage", STORAGES)
def test_good_password_gives_230_and_a_private_ticket_cache_that_quit_destroys(krb_server, realm, storage):
    server = krb_server(storage=storage)
    ftp = server.ftp("alice", USERS["alice"])
    assert ftp.pwd() == "/"
    transfer_through_storage(server, ftp)
    [cache] = ticket_caches(server)
    assert cache.name.startswith("alice-")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(ccache_dir(server).stat().st_mode) == 0o700
    rc, out = realm.klist(cache)
    assert rc == 0 and f"alice@{REALM}" in out and f"krbtgt/{REALM}@{REALM}" in out, out
    assert ftp.quit().startswith("221")
    wait_caches_gone(server)


def test_name_with_an_accepted_realm_logs_in_as_the_first_component(krb_server):
    server = krb_server()
    ftp = server.ftp(f"alice@{REALM}", USERS["alice"])
    ftp.storbinary("STOR mine.txt", io.BytesIO(b"hello"))
    ftp.quit()
    assert (server.root / "alice" / "mine.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("user,password,reason", [
    ("alice", "wrong-password", "alice: .*krb5 error"),
    ("nobody", "whatever", "nobody: .*not found in Kerberos database"),
    ("alice@FOREIGN.TEST", USERS["alice"], "alice@FOREIGN.TEST: realm FOREIGN.TEST is not accepted"),
])
def test_wrong_password_unknown_user_and_foreign_realm_get_530_after_the_delay(krb_server, user, password, reason):
    server = krb_server()
    reply, elapsed = login_error(server, user, password)
    assert reply.startswith("530"), reply
    assert elapsed >= FAIL_DELAY - 0.1, f"530 after only {elapsed:.2f}s"
    server.wait_for_log(f"failed login for {reason}")
    assert not ticket_caches(server)


def test_spoofed_kdc_fails_verification_with_530_and_a_log_line(krb_server, realm, tmp_path):
    # Same realm name, same user and password, but its own ftp/localhost key: the server's keytab (from
    # the real realm) cannot decrypt the service ticket this KDC issues.
    with Realm(tmp_path / "spoof", REALM) as spoof:
        spoof.add_users({"alice": USERS["alice"]})
        spoof.add_service(SERVICE, spoof.dir / "spoof.keytab")
        server = krb_server(env_realm=spoof)
        reply, _ = login_error(server, "alice", USERS["alice"])
        assert reply.startswith("530"), reply
        server.wait_for_log("ticket verification failed")
        assert not ticket_caches(server)


def test_no_verify_logs_a_warning_and_needs_no_keytab(krb_server, tmp_path):
    server = krb_server("--krb5-no-verify", keytab=tmp_path / "missing.keytab")
    server.wait_for_log("krb5-no-verify: Kerberos tickets are not verified")
    server.ftp("bob", USERS["bob"]).quit()


def test_stopped_kdc_gets_a_clear_421_within_the_deadline(krb_server, realm):
    server = krb_server("--auth-timeout", str(AUTH_TIMEOUT))
    realm.stop()
    reply, elapsed = login_error(server, "alice", USERS["alice"])
    assert reply.startswith("421") and "the KDC cannot be reached" in reply, reply
    # A client that is not logged in learns the cause, not where the KDC is; the log names it.
    assert realm.kdc_address not in reply, reply
    server.wait_for_log(f"the KDC cannot be reached: KDC {realm.kdc_address}")
    assert elapsed < AUTH_TIMEOUT + 3


def test_hung_kdc_gets_421_within_auth_timeout_while_another_session_transfers(krb_server, realm):
    server = krb_server("--auth-timeout", str(AUTH_TIMEOUT))
    data = os.urandom(4 << 20)
    (server.root / "bob" / "big.bin").write_bytes(data)
    bob = server.ftp("bob", USERS["bob"])
    done, stop, failures = [], threading.Event(), []

    def transfer_loop():
        try:
            while not stop.is_set():
                got = io.BytesIO()
                bob.retrbinary("RETR big.bin", got.write)
                assert got.getvalue() == data
                done.append(time.monotonic())
        except Exception as e:  # reported below, in the test's own thread
            failures.append(e)

    realm.pause()
    worker = threading.Thread(target=transfer_loop)
    worker.start()
    try:
        started = time.monotonic()
        reply, elapsed = login_error(server, "alice", USERS["alice"])
        assert reply.startswith("421") and f"the KDC did not answer within {AUTH_TIMEOUT}s" in reply, reply
        assert realm.kdc_address not in reply, reply
        server.wait_for_log(f"did not answer within {AUTH_TIMEOUT}s: KDC {realm.kdc_address} of realm")
        assert elapsed < AUTH_TIMEOUT + 3
        assert [t for t in done if t > started], "no transfer completed while the login waited on the KDC"
    finally:
        stop.set()
        worker.join(timeout=60)
        realm.resume()
    assert not failures, failures
    # The abandoned check ends once the KDC answers; whatever it got, its ticket cache must not stay.
    server.wait_for_log("Kerberos check of alice ended after its deadline", timeout=60)
    assert [c.name.split("-")[0] for c in ticket_caches(server)] == ["bob"]
    bob.quit()
    wait_caches_gone(server)


@pytest.mark.parametrize("storage", STORAGES)
def test_dropped_connection_destroys_the_ticket_cache(krb_server, realm, storage):
    server = krb_server(storage=storage)
    ftp = server.ftp("alice", USERS["alice"])
    transfer_through_storage(server, ftp)
    [cache] = ticket_caches(server)
    assert realm.klist(cache)[0] == 0
    ftp.close()  # both ends of ftplib's socket, without QUIT
    wait_caches_gone(server)


@pytest.mark.parametrize("storage", STORAGES)
def test_idle_timeout_destroys_the_ticket_cache(krb_server, realm, storage):
    server = krb_server("--idle-timeout", "5", storage=storage)
    ftp = server.ftp("alice", USERS["alice"])
    [cache] = ticket_caches(server)
    rc, out = realm.klist(cache)
    assert rc == 0, out
    transfer_through_storage(server, ftp)
    wait_caches_gone(server, timeout=10)


def test_expired_ticket_ends_the_login_and_refuses_transfers(krb_server, realm):
    realm.add_user("brief", "brief-secret", maxlife="3 seconds")
    server = krb_server()
    (server.root / "brief").mkdir()
    ftp = server.ftp("brief", "brief-secret")
    assert ftp.nlst() == []
    time.sleep(4)
    with pytest.raises(ftplib.error_perm) as refused:
        ftp.nlst()
    assert str(refused.value).startswith("530") and "expired" in str(refused.value)
    wait_caches_gone(server)
    ftp.login("brief", "brief-secret")  # the same connection logs in again with a fresh ticket
    assert len(ticket_caches(server)) == 1


def test_sixteen_concurrent_logins_each_see_only_their_own_home(krb_server):
    server = krb_server("--max-clients", "32")
    for user in MANY:
        (server.root / user / f"{user}.txt").write_text(user)
    results, barrier = {}, threading.Barrier(len(MANY))

    def session(user):
        try:
            ftp = server.ftp(login=False)
            barrier.wait(timeout=30)
            ftp.login(user, MANY[user])
            ftp.storbinary(f"STOR up-{user}", io.BytesIO(user.encode()))
            results[user] = (sorted(ftp.nlst()), len(ticket_caches(server)))
            ftp.quit()
        except Exception as e:
            results[user] = e

    threads = [threading.Thread(target=session, args=(u,)) for u in MANY]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for user in MANY:
        names, caches = results[user]
        assert names == sorted([f"{user}.txt", f"up-{user}"]), (user, names)
        assert caches >= 1
        assert (server.root / user / f"up-{user}").read_text() == user
    wait_caches_gone(server)


def test_lockout_per_user(krb_server):
    server = krb_server("--lockout-after", "3", "--lockout-secs", "60")
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert login_error(server, "alice", "wrong", source)[0].startswith("530")
    server.wait_for_log("lockout: user alice locked out for 60s after 3 failed logins")
    reply, _ = login_error(server, f"alice@{REALM}", USERS["alice"], "127.0.0.5")
    assert reply.startswith("530"), reply
    server.wait_for_log("failed login for alice@HDFSFTPD.TEST: user alice is locked out")
    server.ftp("bob", USERS["bob"], "127.0.0.5").quit()


def test_lockout_per_address(krb_server):
    server = krb_server("--lockout-after", "3", "--lockout-secs", "60")
    for user in ("user00", "user01", "user02"):
        assert login_error(server, user, "wrong", "127.0.0.9")[0].startswith("530")
    server.wait_for_log("lockout: address 127.0.0.9 locked out for 60s after 3 failed logins")
    reply, _ = login_error(server, "user03", MANY["user03"], "127.0.0.9")
    assert reply.startswith("530"), reply
    server.ftp("user03", MANY["user03"], "127.0.0.10").quit()


def run_server(*args, env):
    return run([str(BIN), *args], env=env, text=True, timeout=30)


def test_configuration_errors_name_the_setting(realm, tmp_path):
    base = ["--auth", "krb5", "--check-config", "--local-root", str(tmp_path)]
    p = run_server(*base, env=realm.env)
    assert p.returncode == 2 and "krb5-keytab" in p.stderr, p.stderr
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    p = run_server(*base, "--krb5-keytab", str(realm.keytab), "--krb5-ccache-dir", str(open_dir), env=realm.env)
    assert p.returncode == 2 and "krb5-ccache-dir" in p.stderr and "700" in p.stderr, p.stderr
    p = run_server(*base, "--krb5-keytab", str(realm.keytab), "--krb5-ccache-dir", str(tmp_path / "cc"),
                   env=realm.env)
    assert p.returncode == 0, p.stderr
    p = run_server(*base, "--krb5-keytab", str(realm.keytab), "--anonymous", env=realm.env)
    assert p.returncode == 2 and "anonymous" in p.stderr and "--auth users" in p.stderr, p.stderr
