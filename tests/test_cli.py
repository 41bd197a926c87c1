"""Command-line interface: --help, --version, --check-config, --config."""

import io
import re

from conftest import BIN, run

FLAGS = [
    "--bind", "--ftp-port", "--storage", "--local-root", "--auth", "--users-file",
    "--max-clients", "--max-per-ip", "--pasv-ports", "--pasv-address",
    "--idle-timeout", "--login-timeout", "--data-timeout", "--allow-foreign-port",
    "--log-level", "--login-fail-delay", "--max-login-fails", "--anonymous",
    "--help", "--version", "--check-config", "--config",
]


def _out(p):
    return (p.stdout + p.stderr).decode("utf-8", "replace")


def test_help_lists_every_flag():
    p = run([str(BIN), "--help"], timeout=30)
    assert p.returncode == 0, _out(p)
    text = p.stdout.decode()
    missing = [f for f in FLAGS if f not in text]
    assert not missing, f"--help does not mention {missing}:\n{text}"


def test_version():
    p = run([str(BIN), "--version"], timeout=30)
    assert p.returncode == 0, _out(p)
    assert re.search(r"\d+\.\d+\.\d+", p.stdout.decode()), _out(p)


def _valid_args(tmp_path):
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    users = tmp_path / "users"
    users.write_text("alice:$6$abc$def:alice:rw\n")
    (root / "alice").mkdir(exist_ok=True)
    return ["--storage", "local", "--local-root", str(root), "--auth", "users",
            "--users-file", str(users), "--bind", "127.0.0.1", "--ftp-port", "2121"]


def test_check_config_ok(tmp_path):
    p = run([str(BIN), "--check-config"] + _valid_args(tmp_path), timeout=30)
    assert p.returncode == 0, _out(p)


def test_check_config_bad_flag_value(tmp_path):
    for key, val in (("--max-clients", "abc"), ("--ftp-port", "99999"),
                     ("--idle-timeout", "ten"), ("--pasv-ports", "9000-8000"),
                     ("--log-level", "loud"), ("--login-fail-delay", "soon"), ("--max-per-user", "two"),
                     ("--deny-name", "a/b"), ("--hide-name", "[x")):
        p = run([str(BIN), "--check-config"] + _valid_args(tmp_path) + [key, val], timeout=30)
        assert p.returncode != 0, f"{key} {val} accepted: {_out(p)}"
        assert key.lstrip("-") in _out(p), f"error for {key} {val} does not name it: {_out(p)}"


def test_check_config_bad_config_file(tmp_path):
    args = _valid_args(tmp_path)
    cfg = tmp_path / "bad.conf"
    cfg.write_text("# comment\nmax-clients = x\n")
    p = run([str(BIN), "--check-config", "--config", str(cfg)] + args, timeout=30)
    assert p.returncode != 0, _out(p)
    assert "max-clients" in _out(p), _out(p)


def test_check_config_unknown_config_key(tmp_path):
    args = _valid_args(tmp_path)
    cfg = tmp_path / "typo.conf"
    cfg.write_text("no-such-key = 1\n")
    p = run([str(BIN), "--check-config", "--config", str(cfg)] + args, timeout=30)
    assert p.returncode != 0, _out(p)
    assert "no-such-key" in _out(p), _out(p)


def test_check_config_good_config_file(tmp_path):
    args = _valid_args(tmp_path)
    cfg = tmp_path / "good.conf"
    cfg.write_text("# comment\nmax-clients = 4\nidle-timeout = 60\n\nlog-level = debug\n")
    p = run([str(BIN), "--check-config", "--config", str(cfg)] + args, timeout=30)
    assert p.returncode == 0, _out(p)


def test_check_config_missing_root(tmp_path):
    args = _valid_args(tmp_path)
    i = args.index("--local-root")
    args[i + 1] = str(tmp_path / "does-not-exist")
    p = run([str(BIN), "--check-config"] + args, timeout=30)
    assert p.returncode != 0, _out(p)
    assert "local-root" in _out(p) or "does-not-exist" in _out(p), _out(p)


def test_unknown_flag_rejected():
    p = run([str(BIN), "--no-such-flag"], timeout=30)
    assert p.returncode != 0
    assert "no-such-flag" in _out(p)


def test_server_from_config_file(make_server):
    """Every setting can come from a --config file instead of flags."""
    s = make_server(use_config_file=True)
    (s.home() / "cfg.txt").write_bytes(b"from config")
    f = s.ftp()
    try:
        buf = io.BytesIO()
        f.retrbinary("RETR cfg.txt", buf.write)
        assert buf.getvalue() == b"from config"
    finally:
        f.close()
