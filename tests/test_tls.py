"""FTPS: implicit and explicit TLS with curl, lftp and ftplib; policies; handshake abuse; certificates."""

import ftplib
import io
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from tls_fixtures import (
    PASSWORD,
    TIMEOUT,
    USER,
    ImplicitFTP_TLS,
    ResumingFTP_TLS,
    certs,  # noqa: F401 (fixture)
    client_context,
    make_cert,
    payload,  # noqa: F401 (fixture)
    require_tool,
    run,
    running_tls,
    same_bytes,
    tls_daemon,
    tls_server,  # noqa: F401 (fixture)
)
from harness import BIN, wait_for

HOST = "127.0.0.1"


def connect_ftplib(server, certs, implicit, cls=None):
    context = client_context(certs)
    if implicit:
        ftp = (cls or ImplicitFTP_TLS)(context=context, timeout=TIMEOUT)
        ftp.connect(HOST, server.ftps_port)
    else:
        ftp = (cls or ftplib.FTP_TLS)(context=context, timeout=TIMEOUT)
        ftp.connect(HOST, server.port)
    ftp.login(USER, PASSWORD)
    return ftp


def case_name(client, implicit, prot, passive):
    return f"{client}-{'implicit' if implicit else 'explicit'}-prot{prot}-{'pasv' if passive else 'active'}"


# ---------------------------------------------------------------------------------------------------
# Transfers: login, LIST, 100 MiB up and down, byte-identical.


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
@pytest.mark.parametrize("prot", ["C", "P"])
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_ftplib(tls_server, certs, payload, tmp_path, implicit, prot, passive):
    name = case_name("ftplib", implicit, prot, passive) + ".bin"
    ftp = connect_ftplib(tls_server, certs, implicit)
    try:
        ftp.prot_p() if prot == "P" else ftp.prot_c()
        ftp.set_pasv(passive)
        with open(payload, "rb") as f:
            assert ftp.storbinary(f"STOR {name}", f, blocksize=1 << 20).startswith("226")
        lines = []
        ftp.retrlines("LIST", lines.append)
        assert any(line.endswith(" " + name) for line in lines), lines
        target = tmp_path / "down.bin"
        with open(target, "wb") as f:
            assert ftp.retrbinary(f"RETR {name}", f.write, blocksize=1 << 20).startswith("226")
        ftp.quit()
    finally:
        ftp.close()
    assert same_bytes(tls_server.home() / name, payload)
    assert same_bytes(target, payload)


def curl_args(server, certs, implicit, prot, passive):
    require_tool("curl")
    args = ["curl", "-sS", "-v", "--cacert", str(certs["cert"]), "-u", f"{USER}:{PASSWORD}"]
    # --ftp-ssl-control: TLS on the control connection only, so curl sends PROT C.
    args += ["--ftp-ssl-control"] if prot == "C" else [] if implicit else ["--ssl-reqd"]
    args += [] if passive else ["-P", HOST]
    base = f"ftps://{HOST}:{server.ftps_port}" if implicit else f"ftp://{HOST}:{server.port}"
    return args, base


# curl 7.87-7.88 (Debian 12's) cannot do active mode with PROT P: it never starts TLS on the data
# connection it accepts (curl issue #10666, fixed in 8.0). lftp and ftplib cover that case.
CURL_CASES = [
    (implicit, prot, passive)
    for implicit in (False, True)
    for prot in ("C", "P")
    for passive in (True, False)
    if passive or prot == "C"
]


@pytest.mark.parametrize(
    "implicit,prot,passive", CURL_CASES, ids=[case_name("curl", *case) for case in CURL_CASES]
)
def test_curl(tls_server, certs, payload, tmp_path, implicit, prot, passive):
    name = case_name("curl", implicit, prot, passive) + ".bin"
    args, base = curl_args(tls_server, certs, implicit, prot, passive)
    upload = run(args + ["-T", str(payload), f"{base}/{name}"])
    assert upload.returncode == 0, upload.stderr[-3000:]
    assert f"> PROT {prot}" in upload.stderr
    listing = run(args + [f"{base}/"])
    assert listing.returncode == 0, listing.stderr[-3000:]
    assert name in listing.stdout
    target = tmp_path / "down.bin"
    download = run(args + ["-o", str(target), f"{base}/{name}"])
    assert download.returncode == 0, download.stderr[-3000:]
    if prot == "P":
        # The data connection resumed the control connection's TLS session.
        assert "SSL re-using session ID" in download.stderr
    assert same_bytes(tls_server.home() / name, payload)
    assert same_bytes(target, payload)


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
@pytest.mark.parametrize("protect", [True, False], ids=["protect-data", "clear-data"])
@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_lftp(tls_server, payload, tmp_path, implicit, protect, passive):
    require_tool("lftp")
    name = case_name("lftp", implicit, "P" if protect else "C", passive) + ".bin"
    target = tmp_path / "down.bin"
    url = f"ftps://{HOST}:{tls_server.ftps_port}" if implicit else f"ftp://{HOST}:{tls_server.port}"
    commands = [
        "set cmd:fail-exit yes",
        "set net:max-retries 1",
        "set net:timeout 10",
        "set ssl:verify-certificate no",
        "set ftp:ssl-force yes",
        f"set ftp:ssl-protect-data {'yes' if protect else 'no'}",
        f"set ftp:passive-mode {'on' if passive else 'off'}",
        "debug 4",  # lftp logs the server's replies (not its own commands) to stderr
        f"open -u {USER},{PASSWORD} {url}",
        f"put {payload} -o {name}",
        "cls -1",
        f"get {name} -o {target}",
    ]
    result = run(["lftp", "-c", "; ".join(commands)], cwd=tmp_path)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    assert name in result.stdout.split()
    prots = [line for line in result.stderr.splitlines() if "<--- 200 PROT now" in line]
    assert prots and ("Private" if protect else "Clear") in prots[-1], prots
    if not implicit:
        assert "<--- 234 AUTH TLS OK" in result.stderr
    assert same_bytes(tls_server.home() / name, payload)
    assert same_bytes(target, payload)


# ---------------------------------------------------------------------------------------------------
# Protocol details.


def test_feat_and_security_commands(tls_server, certs):
    plain = ftplib.FTP(timeout=TIMEOUT)
    plain.connect(HOST, tls_server.port)
    try:
        features = plain.sendcmd("FEAT")
        for feature in ("AUTH TLS", "PBSZ", "PROT"):
            assert f"\n {feature}" in features
        with pytest.raises(ftplib.error_perm, match="^503"):
            plain.sendcmd("PBSZ 0")
        with pytest.raises(ftplib.error_perm, match="^503"):
            plain.sendcmd("PROT P")
    finally:
        plain.close()
    ftp = connect_ftplib(tls_server, certs, implicit=False)
    try:
        with pytest.raises(ftplib.error_perm, match="^534"):
            ftp.sendcmd("CCC")
        with pytest.raises(ftplib.error_perm, match="^536"):
            ftp.sendcmd("PROT S")
        with pytest.raises(ftplib.error_perm, match="^504"):
            ftp.sendcmd("PROT X")
        with pytest.raises(ftplib.error_perm, match="^503"):
            ftp.sendcmd("AUTH TLS")
        assert ftp.sendcmd("PBSZ 0") == "200 PBSZ=0"
    finally:
        ftp.close()


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
def test_data_connections_resume_the_control_session(tls_server, certs, implicit):
    class Resuming(ResumingFTP_TLS, ImplicitFTP_TLS if implicit else ftplib.FTP_TLS):
        pass

    ftp = connect_ftplib(tls_server, certs, implicit, cls=Resuming)
    try:
        ftp.prot_p()
        ftp.retrlines("LIST", lambda line: None)
        assert ftp.resumed is True
    finally:
        ftp.close()


def test_plain_login_from_loopback_allowed_by_default(tls_server):
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(HOST, tls_server.port)
    try:
        assert ftp.login(USER, PASSWORD).startswith("230")
    finally:
        ftp.close()


# ---------------------------------------------------------------------------------------------------
# Policies.


def test_clear_text_login_refused_when_tls_required(tmp_path, certs):
    with running_tls(tmp_path, certs, ["--require-tls-login"]) as server:
        ftp = ftplib.FTP(timeout=TIMEOUT)
        ftp.connect(HOST, server.port)
        try:
            with pytest.raises(ftplib.error_perm) as refused:
                ftp.login(USER, PASSWORD)
            assert str(refused.value).startswith("530")
            assert "requires TLS" in str(refused.value) and "AUTH TLS" in str(refused.value)
        finally:
            ftp.close()
        curl = run(["curl", "-sS", "-u", f"{USER}:{PASSWORD}", f"ftp://{HOST}:{server.port}/"])
        assert curl.returncode == 67, curl.stderr  # login denied
        connect_ftplib(server, certs, implicit=False).close()
        connect_ftplib(server, certs, implicit=True).close()
        assert "clear-text login refused" in server.log_text()


def test_clear_data_refused_when_data_tls_required(tmp_path, certs):
    with running_tls(tmp_path, certs, ["--require-data-tls"]) as server:
        (server.home() / "small.txt").write_text("hello\n")
        ftp = connect_ftplib(server, certs, implicit=False)
        try:
            for prot in (None, "C"):  # before any PROT, and after PROT C
                if prot:
                    ftp.prot_c()
                with pytest.raises(ftplib.error_perm) as refused:
                    ftp.retrbinary("RETR small.txt", lambda data: None)
                assert str(refused.value).startswith("521") and "PROT P" in str(refused.value)
                with pytest.raises(ftplib.error_perm, match="^521"):
                    ftp.retrlines("LIST", lambda line: None)
            ftp.prot_p()
            chunks = []
            ftp.retrbinary("RETR small.txt", chunks.append)
            assert b"".join(chunks) == b"hello\n"
        finally:
            ftp.close()


@pytest.mark.parametrize("command", ["STOR", "APPE"])
def test_failed_data_handshake_leaves_the_target_file_alone(tls_server, certs, command):
    """Under PROT P the file is opened only after the data connection's TLS handshake: a client whose
    handshake fails (here: clear text on the data connection) has not emptied the file it targeted."""
    name = f"keep-{command.lower()}.txt"
    (tls_server.home() / name).write_bytes(b"yesterday's report\n")
    ftp = connect_ftplib(tls_server, certs, implicit=False)
    try:
        ftp.prot_p()
        ftp.voidcmd("TYPE I")
        host, port = ftp.makepasv()
        ftp.putcmd(f"{command} {name}")
        with socket.create_connection((host, port), timeout=TIMEOUT) as data:
            assert ftp.getresp().startswith("150")
            data.sendall(b"not a TLS client hello\r\n" * 4)
            wait_closed(data, TIMEOUT)
        with pytest.raises(ftplib.error_temp) as failed:
            ftp.getresp()
        assert str(failed.value).startswith("425") and "TLS handshake" in str(failed.value)
        chunks = []
        ftp.retrbinary(f"RETR {name}", chunks.append)
        assert b"".join(chunks) == b"yesterday's report\n"
        ftp.quit()
    finally:
        ftp.close()
    assert (tls_server.home() / name).read_bytes() == b"yesterday's report\n"


def test_refused_upload_under_prot_p_is_reported_after_the_handshake(tls_server, certs):
    """The 150 reply comes before the file is opened under PROT P; a refusal then ends the transfer
    with the storage's reply, and the session goes on."""
    ftp = connect_ftplib(tls_server, certs, implicit=False)
    try:
        ftp.prot_p()
        with pytest.raises(ftplib.error_perm) as refused:
            ftp.storbinary("STOR no-such-dir/file.bin", io.BytesIO(b"data"))
        assert str(refused.value).startswith("55"), refused.value
        assert ftp.voidcmd("NOOP").startswith("200")
        ftp.quit()
    finally:
        ftp.close()
    assert not (tls_server.home() / "no-such-dir").exists()


def test_a_broken_tls_record_mid_upload_gets_426_without_openssl_internals(tls_server, certs):
    """A PROT P upload whose data connection carries a forged TLS record after the handshake: the
    transfer ends with 426 in plain words (OpenSSL's error text, with its source file names, goes to the
    log only), nothing is published as complete, and the session goes on."""
    ftp = connect_ftplib(tls_server, certs, implicit=False)
    try:
        ftp.prot_p()
        ftp.voidcmd("TYPE I")
        data, _ = ftp.ntransfercmd("STOR forged-record.bin")
        data.sendall(b"genuine bytes first\n")
        # The same connection under the TLS layer: an application-data record whose tag cannot verify.
        with socket.socket(fileno=os.dup(data.fileno())) as raw:
            raw.sendall(b"\x17\x03\x03\x00\x20" + bytes(range(32)))
            with pytest.raises(ftplib.error_temp) as failed:
                ftp.voidresp()
        data.close()
        reply = str(failed.value)
        assert reply.startswith("426"), reply
        assert "TLS" in reply, reply
        for internal in ("error:", "SSL routines", ".c:", "ssl/"):
            assert internal not in reply, reply
        assert ftp.voidcmd("NOOP").startswith("200")
        ftp.quit()
    finally:
        ftp.close()
    assert "forged-record.bin" in tls_server.log_text() and "SSL" in tls_server.log_text()


# ---------------------------------------------------------------------------------------------------
# Handshake abuse on the implicit port: one worker each, at most the login timeout, one log line.


def lines_about(log, sock):
    port = sock.getsockname()[1]
    return [line for line in log.splitlines() if f"127.0.0.1:{port}:" in line]


def wait_closed(sock, limit):
    """Seconds until the server closes `sock` (reads EOF or a reset), at most `limit`."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_stalled_and_garbage_handshakes_hold_one_worker_briefly(tmp_path, certs):
    login_timeout = 2
    extra = ["--max-clients", "2", "--max-per-ip", "0", "--login-timeout", str(login_timeout)]
    with running_tls(tmp_path, certs, extra) as server:
        stalled = socket.create_connection((HOST, server.ftps_port), timeout=TIMEOUT)
        opened = time.monotonic()
        garbage = socket.create_connection((HOST, server.ftps_port), timeout=TIMEOUT)
        garbage.sendall(b"USER alice\r\n")
        assert wait_closed(garbage, 5) < 1.5
        # The stalled handshake holds one of the two workers; a real session uses the other.
        ftp = connect_ftplib(server, certs, implicit=True)
        try:
            ftp.prot_p()
            ftp.retrlines("LIST", lambda line: None)
        finally:
            ftp.quit()
            ftp.close()
        held = time.monotonic() - opened + wait_closed(stalled, login_timeout + 5)
        assert login_timeout - 0.5 < held < login_timeout + 2, held
        time.sleep(0.2)
        log = server.log_text()
        for sock in (stalled, garbage):
            about = lines_about(log, sock)
            assert len(about) == 1 and "handshake failed" in about[0], about
            sock.close()


def test_dripping_handshake_is_cut_at_the_login_timeout(tmp_path, certs):
    """A client that sends a byte at a time never lets a read time out: the deadline still holds."""
    login_timeout = 2
    with running_tls(tmp_path, certs, ["--login-timeout", str(login_timeout)]) as server:
        drip = socket.create_connection((HOST, server.ftps_port), timeout=TIMEOUT)
        started = time.monotonic()
        # The start of a TLS record header announcing a long ClientHello.
        for byte in b"\x16\x03\x01\x02\x00" + b"\x01" * 20:
            try:
                drip.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if time.monotonic() - started > login_timeout + 3:
                break
            time.sleep(0.25)
        held = time.monotonic() - started + wait_closed(drip, 5)
        assert held < login_timeout + 2, held
        time.sleep(0.2)
        assert len(lines_about(server.log_text(), drip)) == 1
        drip.close()


def test_cap_counts_implicit_connections(tmp_path, certs):
    with running_tls(tmp_path, certs, ["--max-clients", "1", "--login-timeout", "5"]) as server:
        first = socket.create_connection((HOST, server.ftps_port), timeout=TIMEOUT)
        time.sleep(0.3)
        second = socket.create_connection((HOST, server.port), timeout=TIMEOUT)
        try:
            assert second.recv(200).startswith(b"421 ")
        finally:
            second.close()
            first.close()


# ---------------------------------------------------------------------------------------------------
# Certificates.


def start_failure(tmp_path, certs, tls_args):
    server = tls_daemon(tmp_path, certs, tls=[])
    result = run([str(BIN), *server.args, *tls_args], timeout=30)
    return result.returncode, result.stderr


def test_missing_certificate_file(tmp_path, certs):
    missing = tmp_path / "nope.pem"
    code, stderr = start_failure(tmp_path, certs, ["--tls-cert", str(missing), "--tls-key", str(certs["key"])])
    assert code != 0
    assert "tls-cert" in stderr and str(missing) in stderr and "No such file" in stderr


def test_wrong_pkcs12_password(tmp_path, certs):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not-the-password\n")
    args = ["--tls-pkcs12", str(certs["p12"]), "--tls-pkcs12-password-file", str(wrong)]
    code, stderr = start_failure(tmp_path, certs, args)
    assert code != 0
    assert "tls-pkcs12" in stderr and "wrong password" in stderr


def test_key_not_matching_certificate(tmp_path, certs):
    other = make_cert(tmp_path / "other")
    code, stderr = start_failure(tmp_path, certs, ["--tls-cert", str(certs["cert"]), "--tls-key", str(other["key"])])
    assert code != 0
    assert "does not match" in stderr


def test_unusable_certificate_is_blamed_on_tls_cert(tmp_path, certs):
    """A certificate OpenSSL refuses (here: a 512-bit RSA key, below every security level) is named
    as --tls-cert, not --tls-key."""
    cert, key = tmp_path / "weak.pem", tmp_path / "weak.key"
    made = run(["openssl", "req", "-x509", "-newkey", "rsa:512", "-nodes", "-subj", "/CN=weak", "-days", "2",
                "-keyout", str(key), "-out", str(cert)])  # fmt: skip
    assert made.returncode == 0, made.stderr
    code, stderr = start_failure(tmp_path, certs, ["--tls-cert", str(cert), "--tls-key", str(key)])
    assert code == 2
    assert "tls-cert: cannot use the certificate" in stderr and "key too small" in stderr, stderr


def test_key_formats(tmp_path, certs):
    """PKCS#8 and traditional PEM keys are both taken; an encrypted one is refused at start, never
    asked for on the terminal."""
    rsa_key, encrypted = tmp_path / "rsa.pem", tmp_path / "encrypted.pem"
    converted = run(["openssl", "rsa", "-in", str(certs["key"]), "-out", str(rsa_key), "-traditional"])
    assert converted.returncode == 0, converted.stderr
    server = tls_daemon(tmp_path, certs, tls=["--tls-cert", str(certs["cert"]), "--tls-key", str(rsa_key)])
    checked = run([str(BIN), *server.args, "--check-config"], timeout=30)
    assert checked.returncode == 0, checked.stderr
    sealed = run(["openssl", "pkey", "-in", str(certs["key"]), "-out", str(encrypted), "-aes256", "-passout", "pass:x"])
    assert sealed.returncode == 0, sealed.stderr
    args = ["--tls-cert", str(certs["cert"]), "--tls-key", str(encrypted)]
    code, stderr = start_failure(tmp_path, certs, args)
    assert code != 0
    assert "tls-key" in stderr and "not an unencrypted PEM private key" in stderr


def test_tls_settings_need_a_certificate(tmp_path, certs):
    code, stderr = start_failure(tmp_path, certs, ["--require-data-tls"])
    assert code != 0 and "needs a certificate" in stderr


def test_pkcs12_serves_implicit_and_explicit(tmp_path, certs):
    args = ["--tls-pkcs12", str(certs["p12"]), "--tls-pkcs12-password-file", str(certs["password"])]
    with running_tls(tmp_path, certs, tls=args) as server:
        for implicit in (False, True):
            ftp = connect_ftplib(server, certs, implicit)
            try:
                ftp.prot_p()
                ftp.retrlines("LIST", lambda line: None)
            finally:
                ftp.close()


def test_sighup_reloads_the_certificate_without_dropping_sessions(tmp_path, certs):
    live = tmp_path / "live"
    live.mkdir()
    for key in ("cert", "key"):
        shutil.copy(certs[key], live / f"{key}.pem")
    args = ["--tls-cert", str(live / "cert.pem"), "--tls-key", str(live / "key.pem")]
    with running_tls(tmp_path / "srv", certs, tls=args) as server:
        before = connect_ftplib(server, certs, implicit=True)
        before.prot_p()
        new = make_cert(tmp_path / "new")
        for key in ("cert", "key"):
            shutil.copy(new[key], live / f"{key}.pem")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "TLS certificate reloaded" not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        # The running session goes on, data connections included.
        before.retrlines("LIST", lambda line: None)
        before.quit()
        # New connections get the new certificate.
        after = connect_ftplib(server, new, implicit=True)
        try:
            served = after.sock.getpeercert(binary_form=True)
            assert served == ssl.PEM_cert_to_DER_cert(new["cert"].read_text())
        finally:
            after.close()



def resident_mib(server):
    status = (Path("/proc") / str(server.proc.pid) / "status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def test_memory_goes_back_after_bursts_of_prot_p_sessions(tmp_path, certs):
    """Three bursts of 40 clients at once, each logging in over TLS, listing and fetching 1 MiB with PROT
    P: the server's resident memory comes back to within 20% of where it was before them (issue 26's
    bound). Sessions once kept their 1 MiB buffers in the allocator after they ended (40 MiB and more
    stayed after such bursts); then the pooled workers kept their threads' allocator caches, OpenSSL
    state and deepened stacks, and the heaps other than the main one their free ends (up to 1.6x)."""
    extra = ["--max-clients", "64", "--max-per-ip", "0"]
    with running_tls(tmp_path, certs, extra=extra) as server:
        (server.homes[USER] / "1m.bin").write_bytes(os.urandom(1 << 20))
        before = resident_mib(server)
        failures = []

        def client():
            try:
                ftp = ftplib.FTP_TLS(context=client_context(certs), timeout=TIMEOUT)
                ftp.connect(HOST, server.port)
                ftp.login(USER, PASSWORD)
                ftp.prot_p()
                assert ftp.nlst() == ["1m.bin"]
                got = bytearray()
                ftp.retrbinary("RETR 1m.bin", got.extend)
                assert len(got) == 1 << 20
                ftp.quit()
            except Exception as e:  # every failure counts, whatever its kind
                failures.append(repr(e))

        for _ in range(3):
            clients = [threading.Thread(target=client) for _ in range(40)]
            for thread in clients:
                thread.start()
            for thread in clients:
                thread.join()
        assert not failures, failures
        bound = before * 1.2
        wait_for(lambda: resident_mib(server) <= bound, 30, f"RSS back to {bound:.1f} MiB or less (before: {before:.1f})")
