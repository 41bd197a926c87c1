"""TLS 1.3 and the TLS settings operators expect: protocol versions, cipher lists, client certificates,
--require-ssl-reuse. Checked with `openssl s_client`, curl and ftplib against the real server."""

import ftplib
import socket
import ssl

import pytest

from tls_fixtures import (
    PASSWORD,
    TIMEOUT,
    USER,
    ImplicitFTP_TLS,
    ResumingFTP_TLS,
    certs,  # noqa: F401 (fixture)
    client_context,
    require_tool,
    run,
    running_tls,
    tls_daemon,
    tls_server,  # noqa: F401 (fixture)
)
from harness import BIN, wait_for

HOST = "127.0.0.1"
SESSION = "USER alice\nPASS secret-pw\nPWD\nQUIT\n"


def s_client(certs, port, *args, starttls=False, send="QUIT\n"):
    """One `openssl s_client` session: the commands in `send` (CRLF-terminated), stdout and stderr
    together in the result's `.out`."""
    require_tool("openssl")
    command = ["openssl", "s_client", "-connect", f"{HOST}:{port}", "-CAfile", str(certs["cert"])]
    # -nocommands: a line starting with Q or R is FTP, not s_client's quit or renegotiate.
    # -brief: the server's lines alone on stdout, the connection's summary on stderr.
    command += ["-verify_return_error", "-ign_eof", "-crlf", "-nocommands", "-brief", *args]
    if starttls:
        command += ["-starttls", "ftp"]
    result = run(command, input=send)
    result.out = result.stdout + result.stderr
    return result


def replied(result, start):
    """Whether the server sent a line starting with `start` (e.g. '220 ')."""
    return any(line.startswith(start) for line in result.stdout.splitlines())


def wait_logged(server, start, text):
    """Waits for `text` in what `server` logged past `start` (a length of its log): a refused
    handshake is logged after the client has seen the refusal."""
    wait_for(lambda: text in server.log_text()[start:], 10, f"a log line with {text!r}")


def negotiated(result):
    """The protocol and cipher s_client reports, e.g. ('TLSv1.3', 'TLS_AES_256_GCM_SHA384')."""
    summary = dict(line.split(": ", 1) for line in result.stderr.splitlines() if ": " in line)
    return summary.get("Protocol version"), summary.get("Ciphersuite")


# ---------------------------------------------------------------------------------------------------
# Protocol versions.


@pytest.mark.parametrize("version", ["1.3", "1.2"])
@pytest.mark.parametrize("explicit", [False, True], ids=["implicit", "auth-tls"])
def test_handshake_and_login(tls_server, certs, version, explicit):
    port = tls_server.port if explicit else tls_server.ftps_port
    result = s_client(certs, port, f"-tls{version.replace('.', '_')}", starttls=explicit, send=SESSION)
    assert result.returncode == 0, result.out
    assert negotiated(result)[0] == f"TLSv{version}", result.out
    assert "Verification: OK" in result.stderr
    if not explicit:
        assert replied(result, "220 ")
    assert replied(result, "230 ") and replied(result, '257 "/"') and replied(result, "221 ")


def test_tls13_is_what_clients_get_by_default(tls_server, certs):
    log_start = len(tls_server.log_text())  # the server is shared: only this test's lines count
    result = s_client(certs, tls_server.ftps_port)
    assert negotiated(result)[0] == "TLSv1.3", result.out
    lines = [line for line in tls_server.log_text()[log_start:].splitlines() if "implicit FTPS, TLSv1.3" in line]
    assert lines, tls_server.log_text()


@pytest.mark.parametrize("version", ["1", "1_1"])
def test_tls_1_0_and_1_1_are_refused(tls_server, certs, version):
    log_start = len(tls_server.log_text())
    # SECLEVEL 0: OpenSSL 3 itself would not offer these versions otherwise.
    result = s_client(certs, tls_server.ftps_port, f"-tls{version}", "-cipher", "DEFAULT@SECLEVEL=0")
    assert result.returncode != 0
    assert "alert protocol version" in result.out, result.out
    assert not replied(result, "220 ")
    wait_logged(tls_server, log_start, "unsupported protocol")


def test_minimum_version_1_3(tmp_path, certs):
    with running_tls(tmp_path, certs, ["--tls-min-version", "1.3"]) as server:
        refused = s_client(certs, server.ftps_port, "-tls1_2")
        assert refused.returncode != 0 and "alert protocol version" in refused.out, refused.out
        accepted = s_client(certs, server.ftps_port, "-tls1_3")
        assert negotiated(accepted)[0] == "TLSv1.3" and replied(accepted, "220 "), accepted.out
        # An everyday client gets TLS 1.3 and moves data under PROT P.
        ftp = connect(server, certs, implicit=False)
        try:
            assert ftp.sock.version() == "TLSv1.3"
            ftp.prot_p()
            ftp.retrlines("LIST", lambda line: None)
        finally:
            ftp.close()


def test_minimum_version_must_be_known(tmp_path, certs):
    result = run(start_args(tmp_path, certs, ["--tls-min-version", "1.1"]))
    assert result.returncode == 2
    assert "tls-min-version: '1.1' is not 1.2 or 1.3" in result.stderr


# ---------------------------------------------------------------------------------------------------
# Ciphers.


def test_default_ciphers_are_mozilla_intermediate(tls_server, certs):
    forward_secret = s_client(certs, tls_server.ftps_port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert negotiated(forward_secret) == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"), forward_secret.out
    # Static RSA and finite-field DH key exchange and CBC are not in the profile.
    for cipher in ("AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"):
        refused = s_client(certs, tls_server.ftps_port, "-tls1_2", "-cipher", cipher)
        assert refused.returncode != 0 and "alert handshake failure" in refused.out, (cipher, refused.out)



@pytest.mark.parametrize("version, offer, chosen", [
    ("1_3", ["-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"],
     "TLS_AES_128_GCM_SHA256"),
    ("1_2", ["-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256"],
     "ECDHE-RSA-AES128-GCM-SHA256"),
])
def test_the_servers_cipher_order_wins(tls_server, certs, version, offer, chosen):
    # OpenSSL clients (curl, lftp, Python) list AES-256 first; the server's first choice, AES-128, is
    # cheaper per byte on bulk data.
    result = s_client(certs, tls_server.port, f"-tls{version}", *offer, starttls=True)
    assert negotiated(result)[1] == chosen, result.out
    assert replied(result, "221 "), result.out

def test_cipher_flags_take_effect(tmp_path, certs):
    extra = ["--tls-ciphers", "ECDHE-RSA-AES256-GCM-SHA384", "--tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"]
    with running_tls(tmp_path, certs, extra) as server:
        tls12 = s_client(certs, server.ftps_port, "-tls1_2")
        assert negotiated(tls12) == ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"), tls12.out
        tls13 = s_client(certs, server.port, "-tls1_3", starttls=True)
        assert negotiated(tls13) == ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"), tls13.out
        refused = s_client(certs, server.ftps_port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        assert refused.returncode != 0 and "alert handshake failure" in refused.out, refused.out
        refused = s_client(certs, server.ftps_port, "-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384")
        assert refused.returncode != 0 and "alert handshake failure" in refused.out, refused.out


@pytest.mark.parametrize("flag", ["--tls-ciphers", "--tls-ciphersuites"])
def test_unknown_cipher_names_stop_the_start(tmp_path, certs, flag):
    result = run(start_args(tmp_path, certs, [flag, "NO-SUCH-CIPHER"]))
    assert result.returncode == 2
    assert f"{flag.removeprefix('--')}: 'NO-SUCH-CIPHER' names no" in result.stderr, result.stderr


# ---------------------------------------------------------------------------------------------------
# Client certificates.


def openssl(*args, cwd):
    result = run(["openssl", *args], cwd=cwd)
    assert result.returncode == 0, result.stderr


def new_key(directory, name, subject, *self_signed):
    """An EC key and, with `self_signed` ("-x509", ...), a self-signed certificate; else a request."""
    output = f"{name}.pem" if self_signed else f"{name}.csr"
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", subject,
            *self_signed, "-keyout", f"{name}.key", "-out", output, cwd=directory)  # fmt: skip


@pytest.fixture(scope="module")
def client_pki(tmp_path_factory):
    """A CA, a client certificate it signed, and a look-alike client certificate it did not sign."""
    require_tool("openssl")
    directory = tmp_path_factory.mktemp("client-pki")
    new_key(directory, "ca", "/CN=hdfsftpd test client CA", "-x509", "-days", "3650")
    new_key(directory, "client", "/CN=batch-job")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "3650", "-out", "client.pem", cwd=directory)  # fmt: skip
    new_key(directory, "rogue", "/CN=batch-job", "-x509", "-days", "3650")
    return {name: (directory / f"{name}.pem", directory / f"{name}.key") for name in ("ca", "client", "rogue")}


def with_cert(pki, name):
    cert, key = pki[name]
    return ["-cert", str(cert), "-key", str(key)]


@pytest.fixture(scope="module")
def cert_server(tmp_path_factory, certs, client_pki):
    extra = ["--tls-client-ca", str(client_pki["ca"][0]), "--tls-client-cert", "require"]
    with running_tls(tmp_path_factory.mktemp("cert-server"), certs, extra) as server:
        yield server


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_required_client_certificate_admits_a_valid_one(cert_server, certs, client_pki, version):
    args = [f"-tls{version.replace('.', '_')}", *with_cert(client_pki, "client")]
    log_start = len(cert_server.log_text())
    result = s_client(certs, cert_server.ftps_port, *args, send=SESSION)
    assert result.returncode == 0, result.out
    assert replied(result, "220 ") and replied(result, "230 "), result.out
    assert "client certificate CN=batch-job" in cert_server.log_text()[log_start:]


@pytest.mark.parametrize("version", ["1.3", "1.2"])
@pytest.mark.parametrize("explicit", [False, True], ids=["implicit", "auth-tls"])
def test_required_client_certificate_refuses_none(cert_server, certs, version, explicit):
    port = cert_server.port if explicit else cert_server.ftps_port
    log_start = len(cert_server.log_text())
    result = s_client(certs, port, f"-tls{version.replace('.', '_')}", starttls=explicit, send=SESSION)
    # TLS 1.3 has its own alert for it; TLS 1.2 answers with a plain handshake failure.
    alert = "alert certificate required" if version == "1.3" else "alert handshake failure"
    assert alert in result.out, result.out
    assert not replied(result, "230 ")
    wait_logged(cert_server, log_start, "peer did not return a certificate")


def test_required_client_certificate_refuses_one_from_another_ca(cert_server, certs, client_pki):
    log_start = len(cert_server.log_text())
    result = s_client(certs, cert_server.ftps_port, *with_cert(client_pki, "rogue"), send=SESSION)
    assert "alert unknown ca" in result.out or "alert bad certificate" in result.out, result.out
    assert not replied(result, "220 ")
    wait_logged(cert_server, log_start, "client certificate rejected: self-signed certificate")


def test_client_certificate_session_moves_data(cert_server, certs, client_pki):
    """ftplib with its certificate: PROT P data connections work (they resume the control session,
    which carries the checked certificate)."""
    (cert_server.home() / "report.csv").write_bytes(b"id,amount\n1,100\n")

    class Resuming(ResumingFTP_TLS, ImplicitFTP_TLS):
        pass

    context = client_context(certs)
    context.load_cert_chain(*client_pki["client"])
    ftp = Resuming(context=context, timeout=TIMEOUT)
    ftp.connect(HOST, cert_server.ftps_port)
    try:
        ftp.login(USER, PASSWORD)
        ftp.prot_p()
        chunks = []
        ftp.retrbinary("RETR report.csv", chunks.append)
        assert b"".join(chunks) == b"id,amount\n1,100\n"
        assert ftp.resumed is True
        ftp.quit()
    finally:
        ftp.close()


def test_optional_client_certificate(tmp_path, certs, client_pki):
    extra = ["--tls-client-ca", str(client_pki["ca"][0])]
    with running_tls(tmp_path, certs, extra) as server:
        without = s_client(certs, server.ftps_port)
        assert replied(without, "220 "), without.out
        valid = s_client(certs, server.ftps_port, *with_cert(client_pki, "client"))
        assert replied(valid, "220 "), valid.out
        # One that is sent must be valid.
        rogue = s_client(certs, server.ftps_port, *with_cert(client_pki, "rogue"))
        assert not replied(rogue, "220 "), rogue.out
        assert "client certificate rejected" in server.log_text()


def test_client_certificate_mode_needs_a_ca(tmp_path, certs):
    result = run(start_args(tmp_path, certs, ["--tls-client-cert", "require"]))
    assert result.returncode == 2 and "tls-client-cert: needs --tls-client-ca" in result.stderr


# ---------------------------------------------------------------------------------------------------
# Data connections: session resumption and --require-ssl-reuse.


def connect(tls_server, certs, implicit, cls=None, context=None):
    context = context or client_context(certs)
    ftp = (cls or (ImplicitFTP_TLS if implicit else ftplib.FTP_TLS))(context=context, timeout=TIMEOUT)
    ftp.connect(HOST, tls_server.ftps_port if implicit else tls_server.port)
    ftp.login(USER, PASSWORD)
    return ftp


class ResumingExplicit(ResumingFTP_TLS, ftplib.FTP_TLS):
    pass


def tls12_context(certs):
    context = client_context(certs)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


@pytest.fixture(scope="module")
def reuse_server(tmp_path_factory, certs):
    with running_tls(tmp_path_factory.mktemp("reuse-server"), certs, ["--require-ssl-reuse"]) as server:
        (server.home() / "small.txt").write_text("hello\n")
        yield server


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_require_ssl_reuse_admits_a_resumed_session(reuse_server, certs, version):
    context = tls12_context(certs) if version == "1.2" else client_context(certs)
    ftp = connect(reuse_server, certs, implicit=False, cls=ResumingExplicit, context=context)
    try:
        assert ftp.sock.version() == f"TLSv{version}"
        ftp.prot_p()
        for _ in range(2):  # each data connection resumes the control connection's session
            chunks = []
            ftp.retrbinary("RETR small.txt", chunks.append)
            assert b"".join(chunks) == b"hello\n" and ftp.resumed is True
        ftp.quit()
    finally:
        ftp.close()


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_require_ssl_reuse_refuses_a_fresh_session(reuse_server, certs, version):
    context = tls12_context(certs) if version == "1.2" else client_context(certs)
    log_start = len(reuse_server.log_text())
    ftp = connect(reuse_server, certs, implicit=False, context=context)  # ftplib never resumes
    try:
        ftp.prot_p()
        with pytest.raises(ftplib.error_perm) as refused:
            ftp.retrbinary("RETR small.txt", lambda data: None)
        assert str(refused.value).startswith("522 ") and "resume" in str(refused.value), refused.value
        assert ftp.voidcmd("NOOP").startswith("200")  # the session goes on
        ftp.quit()
    finally:
        ftp.close()
    assert "did not resume the control TLS session" in reuse_server.log_text()[log_start:]


@pytest.mark.parametrize("version", ["1.3", "1.2"])
def test_require_ssl_reuse_refuses_another_sessions_tls_session(reuse_server, certs, version):
    """A data connection that resumes the TLS session of another FTP session (here: another login of
    the same client) is refused: each FTP session's TLS sessions are its own (TLS 1.3 tickets, and
    TLS 1.2 session IDs and tickets alike)."""
    # Python offers only sessions of the same context.
    context = tls12_context(certs) if version == "1.2" else client_context(certs)
    other = connect(reuse_server, certs, implicit=False, context=context)
    thief = connect(reuse_server, certs, implicit=False, cls=ResumingExplicit, context=context)
    try:
        assert other.sock.version() == f"TLSv{version}" and other.sock.session is not None
        thief.sock = SessionSwap(thief.sock, other.sock.session)
        thief.prot_p()
        with pytest.raises(ftplib.error_perm, match="^522 "):
            thief.retrbinary("RETR small.txt", lambda data: None)
        assert thief.resumed is False
    finally:
        thief.close()
        other.close()


class SessionSwap:
    """A control socket that offers someone else's TLS session to data connections."""

    def __init__(self, sock, session):
        self._sock, self.session = sock, session

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_default_accepts_a_fresh_data_session(tls_server, certs):
    (tls_server.home() / "fresh.txt").write_text("fresh\n")
    ftp = connect(tls_server, certs, implicit=False)
    try:
        ftp.prot_p()
        chunks = []
        ftp.retrbinary("RETR fresh.txt", chunks.append)
        assert b"".join(chunks) == b"fresh\n"
        ftp.quit()
    finally:
        ftp.close()


def test_curl_tls13_prot_p_resumes_under_require_ssl_reuse(reuse_server, certs, tmp_path):
    require_tool("curl")
    base = ["curl", "-sS", "-v", "--tlsv1.3", "--cacert", str(certs["cert"]), "-u", f"{USER}:{PASSWORD}"]
    target = tmp_path / "small.txt"
    result = run(base + ["--ssl-reqd", "-o", str(target), f"ftp://{HOST}:{reuse_server.port}/small.txt"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SSL connection using TLSv1.3" in result.stderr and "> PROT P" in result.stderr
    assert target.read_bytes() == b"hello\n"
    upload = run(base + ["-T", str(target), f"ftps://{HOST}:{reuse_server.ftps_port}/copy.txt"])
    assert upload.returncode == 0, upload.stderr[-3000:]
    assert (reuse_server.home() / "copy.txt").read_bytes() == b"hello\n"


def test_lftp_prot_p_under_require_ssl_reuse(reuse_server, tmp_path):
    require_tool("lftp")
    target = tmp_path / "small.txt"
    commands = [
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set ssl:verify-certificate no",
        "set ftp:ssl-force yes",
        "set ftp:ssl-protect-data yes",
        f"open -u {USER},{PASSWORD} ftp://{HOST}:{reuse_server.port}",
        f"get small.txt -o {target}",
        "cls -1",
    ]
    result = run(["lftp", "-c", "; ".join(commands)], cwd=tmp_path)
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    assert target.read_bytes() == b"hello\n" and "small.txt" in result.stdout.split()


# ---------------------------------------------------------------------------------------------------
# Handshake time limit after AUTH TLS.


def test_stalled_handshake_after_auth_is_cut_at_the_login_timeout(tmp_path, certs):
    with running_tls(tmp_path, certs, ["--login-timeout", "2"]) as server:
        sock = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
        try:
            greeting = sock.recv(200)
            assert greeting.startswith(b"220 ")
            sock.sendall(b"AUTH TLS\r\n")
            assert sock.recv(200).startswith(b"234 ")
            sock.settimeout(6)
            # No ClientHello: the server gives up and closes within the login timeout.
            assert sock.recv(200) == b""
        finally:
            sock.close()
        assert "TLS handshake after AUTH failed: TLS handshake took too long" in server.log_text()


def start_args(tmp_path, certs, extra):
    """A command line that checks a configuration with the test certificate and `extra`."""
    return [str(BIN), *tls_daemon(tmp_path, certs, extra).args, "--check-config"]
