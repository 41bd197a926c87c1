"""Kerberos single sign-on (RFC 2228 AUTH GSSAPI) against a real MIT KDC and the real server, with a small
RFC 2228 client on python-gssapi (tests/gss_client.py). The same on the secure HDFS cluster:
tests/test_hdfs_krb5.py.

Debian 12's curl 7.88 (`--krb`) cannot be the client: it fails on its own side decoding the server's
`235 ADAT=` reply (it hands the line end to its strict base64 decoder), against any server."""

import base64
import os
import time

import pytest

from conftest import wait_for
from gss_client import GssFtp, read_all
from krb5_fixtures import (  # noqa: F401  (krb_server and realm: fixtures, found by name)
    REALM, USERS, krb_server, realm, ticket_caches,
)


@pytest.fixture
def kerberos_user(realm, tmp_path, monkeypatch):
    """alice's forwardable TGT in a ticket cache the client's GSS-API uses."""
    cache = tmp_path / "alice.ccache"
    realm.kinit("alice", USERS["alice"], cache, forwardable=True)
    monkeypatch.setenv("KRB5_CONFIG", str(realm.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    return cache


@pytest.mark.parametrize("encrypt", [True, False], ids=["PROT P + ENC", "PROT S + MIC"])
def test_sso_login_without_password_then_upload_download_list(krb_server, kerberos_user, encrypt):
    server = krb_server()
    ftp = GssFtp(server.port)
    code, text = ftp.login()
    assert code == 232, text
    [cache] = ticket_caches(server)
    assert cache.name.startswith("alice-")
    assert ftp.send("PBSZ 1048576", encrypt)[1] == "200 PBSZ=262144"
    level = "P" if encrypt else "S"
    assert ftp.send(f"PROT {level}", encrypt)[0] == 200
    assert ftp.send("PWD", encrypt) == (257, '257 "/" is the current directory')
    assert ftp.send("TYPE I", encrypt)[0] == 200
    payload = os.urandom(700_000)
    assert ftp.stor("sso.bin", payload, encrypt)[0] == 226
    assert (server.root / "alice" / "sso.bin").read_bytes() == payload
    assert ftp.retr("sso.bin") == payload
    listing = ftp.data_connection()
    assert ftp.send("NLST", encrypt)[0] == 150
    assert ftp.unblock(read_all(listing)) == b"sso.bin\r\n"
    assert ftp.reply()[0] == 226
    assert ftp.send("QUIT", encrypt)[0] == 221
    ftp.close()


def test_prot_c_data_is_clear_and_prot_e_is_refused(krb_server, kerberos_user):
    server = krb_server()
    (server.root / "alice" / "clear.txt").write_bytes(b"in the clear\r\n")
    ftp = GssFtp(server.port)
    assert ftp.login()[0] == 232
    assert ftp.send("PROT E")[0] == 536
    assert ftp.send("PROT P")[0] == 503  # PBSZ first
    assert ftp.send("PROT C")[0] == 200
    assert ftp.retr("clear.txt", protected=False) == b"in the clear\r\n"


def test_without_delegation_login_is_refused_with_the_reason(krb_server, kerberos_user):
    server = krb_server()
    ftp = GssFtp(server.port, delegate=False)
    code, text = ftp.login()
    assert code == 530 and "delegated no ticket" in text, text
    assert not ticket_caches(server)


def test_user_as_someone_else_is_refused(krb_server, kerberos_user):
    server = krb_server()
    code, text = GssFtp(server.port).login("bob")
    assert code == 530 and "as alice only" in text, text


def test_user_before_adat_and_clear_commands_after_it_are_refused(krb_server, kerberos_user):
    server = krb_server()
    ftp = GssFtp(server.port)
    assert ftp.send_clear("ADAT AAAA")[0] == 503
    ftp.first_token()
    assert ftp.send_clear("USER alice")[0] == 503
    ftp.close()
    ftp = GssFtp(server.port)
    assert ftp.adat(ftp.first_token())[0] == 235
    assert ftp.send_clear("USER alice")[0] == 533
    assert ftp.send_clear("CONF AAAA")[0] == 537


def test_tampered_and_replayed_commands_are_refused(krb_server, kerberos_user):
    server = krb_server()
    ftp = GssFtp(server.port)
    assert ftp.login()[0] == 232
    command = ftp.wrapped("PWD", encrypt=False)
    token = bytearray(base64.b64decode(command[4:]))
    token[-1] ^= 1
    assert ftp.send_clear("MIC " + base64.b64encode(bytes(token)).decode())[0] == 535
    assert ftp.send_clear(command)[0] == 257
    assert ftp.send_clear(command)[0] == 535  # the same token again: a replay
    log = server.log_text()
    assert "protected command refused" in log
    # Tokens stay out of the log (a MIC token carries its command in clear); the inner command is shown.
    assert command[4:] not in log and "-> PWD" in log


def test_replayed_adat_token_and_wrong_service_are_refused(krb_server, kerberos_user, realm):
    server = krb_server()
    ftp = GssFtp(server.port)
    token = ftp.first_token()
    assert ftp.adat(token)[0] == 235
    other = GssFtp(server.port)
    other.first_token()
    assert other.send_clear(f"ADAT {base64.b64encode(token).decode()}")[0] == 535
    realm.add_service("ftp/otherhost", realm.dir / "other.keytab")
    stranger = GssFtp(server.port, service="ftp@otherhost")
    assert stranger.adat(stranger.first_token())[0] == 535
    assert "ADAT refused" in server.log_text()


def test_a_delegated_ticket_that_expires_ends_the_login_with_530(krb_server, realm, tmp_path, monkeypatch):
    realm.add_user("brief", "brief-secret", maxlife="4 seconds")
    cache = tmp_path / "brief.ccache"
    realm.kinit("brief", "brief-secret", cache, forwardable=True)
    monkeypatch.setenv("KRB5_CONFIG", str(realm.krb5_conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{cache}")
    server = krb_server()
    (server.root / "brief").mkdir()
    ftp = GssFtp(server.port)
    assert ftp.login("brief")[0] == 232
    assert ftp.send("PWD")[0] == 257
    time.sleep(5)
    code, text = ftp.send("PWD")
    assert code == 530 and "expired" in text, text
    wait_for(lambda: not ticket_caches(server), 10, "the expired ticket's cache to go")


@pytest.mark.parametrize("how", ["users file", "krb5 without a keytab"])
def test_without_a_keytab_auth_gssapi_is_not_offered(how, krb_server, server):
    daemon = server if how == "users file" else krb_server("--krb5-no-verify")
    client = daemon.raw(login=False)
    reply = client.cmd("AUTH GSSAPI")
    assert reply.startswith("504 ") and "not configured" in reply, reply
    assert client.cmd("ADAT AAAA").startswith("503 ")
    assert client.cmd("MIC AAAA").startswith("503 ")


def test_a_protected_abor_stops_a_protected_download_and_the_session_goes_on(krb_server, kerberos_user):
    server = krb_server()
    payload = os.urandom(32 << 20)
    (server.root / "alice" / "big.bin").write_bytes(payload)
    ftp = GssFtp(server.port, in_sequence=False)
    assert ftp.login()[0] == 232
    for command in ("PBSZ 262144", "PROT P", "TYPE I"):
        assert ftp.send(command)[0] == 200
    data = ftp.data_connection()
    assert ftp.send("RETR big.bin")[0] == 150
    assert data.recv(65536)
    time.sleep(1)  # the server's writes now block on a full socket
    started = time.monotonic()
    ftp.sock.sendall(ftp.wrapped("ABOR").encode() + b"\r\n")
    assert ftp.reply()[0] == 426
    assert ftp.reply()[0] == 226
    assert time.monotonic() - started < 10
    data.close()
    (server.root / "alice" / "small.txt").write_bytes(b"after the abort\r\n")
    assert ftp.retr("small.txt") == b"after the abort\r\n"
