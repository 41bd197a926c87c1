"""A throwaway MIT Kerberos realm for tests and developers.

`Realm(dir, name).start()` writes kdc.conf and krb5.conf into `dir`, creates the database
(`kdb5_util create -s`), and runs `krb5kdc -n` in the foreground on an ephemeral 127.0.0.1 port, so this
process holds its pid: `stop()` kills exactly that pid, `pause()`/`resume()` SIGSTOP/SIGCONT it.
Principals are added with `kadmin.local`, keytabs exported with `ktadd`. Nothing is written to /etc:
every tool is pointed at the realm's own files through KRB5_CONFIG and KRB5_KDC_PROFILE (`realm.env`).
Missing packages are installed by scripts/install-krb5.sh.

Developers: `scripts/cluster/kdc-fixture.sh` runs a realm in the foreground and prints how to use it.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "klist", "kinit")


def tool(name):
    """The path of a krb5 tool (the KDC tools live in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))
    if found is None:
        raise RuntimeError(f"{name} not found (run scripts/install/install-krb5.sh)")
    return found


def ensure_installed():
    """Installs the krb5 packages when one of the tools is missing."""
    if all(shutil.which(t) or shutil.which(t, path=os.pathsep.join(SBIN)) for t in TOOLS):
        return
    subprocess.run([str(REPO / "scripts" / "install" / "install-krb5.sh")], check=True, timeout=600,
                   stdin=subprocess.DEVNULL)


def free_udp_and_tcp_port():
    """A 127.0.0.1 port free for both UDP and TCP (the KDC listens on both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port for the KDC")


class Realm:
    def __init__(self, directory, name="HDFSFTPD.TEST"):
        self.dir = Path(directory)
        self.name = name
        self.port = None
        self.proc = None
        self.krb5_conf = self.dir / "krb5.conf"
        self.kdc_conf = self.dir / "kdc.conf"
        self.log = self.dir / "kdc.log"

    @property
    def kdc_address(self):
        return f"127.0.0.1:{self.port}"

    @property
    def env(self):
        """The environment every krb5 tool (and the server) of this realm runs with."""
        env = dict(os.environ)
        env.update(KRB5_CONFIG=str(self.krb5_conf), KRB5_KDC_PROFILE=str(self.kdc_conf),
                   KRB5CCNAME=f"FILE:{self.dir / 'ccache'}", KRB5_KTNAME=f"FILE:{self.dir / 'default.keytab'}")
        return env

    def start(self, timeout=30.0):
        ensure_installed()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_udp_and_tcp_port()
        self._write_configs()
        self._run([tool("kdb5_util"), "-r", self.name, "create", "-s", "-P", secrets.token_hex(16)])
        self._start_kdc(timeout)
        return self

    def _write_configs(self):
        d = self.dir
        (d / "kadm5.acl").write_text("")
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f"    kdc_listen = 127.0.0.1:{self.port}\n"
            f"    kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            "[realms]\n"
            f"    {self.name} = {{\n"
            f"        database_name = {d / 'principal'}\n"
            f"        key_stash_file = {d / 'stash'}\n"
            f"        acl_file = {d / 'kadm5.acl'}\n"
            "        max_life = 10h\n"
            "        max_renewable_life = 1d\n"
            "    }\n"
            "[logging]\n"
            f"    kdc = FILE:{self.log}\n"
            f"    admin_server = FILE:{d / 'kadmin.log'}\n"
            f"    default = FILE:{d / 'krb5lib.log'}\n")
        self.krb5_conf.write_text(self.krb5_conf_text())

    def krb5_conf_text(self, realms=()):
        """A client krb5.conf with this realm as default (and `realms`' KDCs too)."""
        blocks = "".join(f"    {r.name} = {{\n        kdc = {r.kdc_address}\n    }}\n" for r in (self, *realms))
        return ("[libdefaults]\n"
                f"    default_realm = {self.name}\n"
                "    dns_lookup_kdc = false\n"
                "    dns_lookup_realm = false\n"
                "    rdns = false\n"
                "    dns_canonicalize_hostname = false\n"
                "    ignore_acceptor_hostname = true\n"
                "[realms]\n" + blocks)

    def _start_kdc(self, timeout):
        out = open(self.dir / "krb5kdc.out", "ab")
        self.proc = subprocess.Popen([tool("krb5kdc"), "-n", "-r", self.name], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"krb5kdc exited with {self.proc.returncode}: "
                                   f"{(self.dir / 'krb5kdc.out').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"krb5kdc did not listen on {self.kdc_address} within {timeout}s")

    def _run(self, argv, stdin=None, timeout=60):
        p = subprocess.run(argv, env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{argv} failed ({p.returncode}): {p.stdout[-2000:]} {p.stderr[-2000:]}")
        return p

    def kadmin(self, *queries):
        """Runs kadmin.local queries (one process for all of them)."""
        p = self._run([tool("kadmin.local"), "-r", self.name], stdin="".join(q + "\n" for q in queries))
        errors = [line for line in p.stderr.splitlines() if "error" in line.lower() or "fail" in line.lower()]
        if errors:
            raise RuntimeError(f"kadmin.local: {errors}")
        return p

    def add_user(self, name, password, maxlife=None):
        life = f" -maxlife \"{maxlife}\"" if maxlife else ""
        self.kadmin(f"addprinc -pw {password} -requires_preauth{life} {name}")

    def add_users(self, users):
        """`users`: {name: password}, added in one kadmin.local run."""
        self.kadmin(*(f"addprinc -pw {pw} -requires_preauth {name}" for name, pw in users.items()))

    def add_service(self, principal, keytab):
        """A random-key service principal (preauth required, see shared notes) exported to `keytab`."""
        self.kadmin(f"addprinc -randkey -requires_preauth {principal}", f"ktadd -k {keytab} {principal}")
        return Path(keytab)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused KDC must be able to die
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kinit(self, principal, password, ccache, forwardable=False):
        """A TGT in `ccache`; `forwardable`: one a GSS-API client can delegate."""
        flags = ["-f"] if forwardable else []
        self._run([tool("kinit"), *flags, "-c", f"FILE:{ccache}", principal], stdin=password + "\n")

    def klist(self, ccache):
        """`klist -c` of a cache: (returncode, output)."""
        p = subprocess.run([tool("klist"), "-c", f"FILE:{ccache}"], env=self.env, capture_output=True, text=True,
                           timeout=30)
        return p.returncode, p.stdout + p.stderr

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def serve(directory, name, users):
    """Runs a realm in the foreground until interrupted (for developers)."""
    realm = Realm(directory, name).start()
    try:
        realm.add_users(users)
        keytab = realm.add_service("ftp/localhost", realm.dir / "ftp.keytab")
        print(f"realm {name}: KDC {realm.kdc_address} (pid {realm.proc.pid}) in {realm.dir}")
        print(f"users: {', '.join(f'{u}/{p}' for u, p in users.items())}")
        print(f"export KRB5_CONFIG={realm.krb5_conf}")
        print(f"hdfsftpd --auth krb5 --krb5-keytab {keytab} --krb5-service ftp/localhost "
              f"--krb5-ccache-dir {realm.dir / 'ccaches'} ...")
        print("Ctrl-C stops the KDC.", flush=True)
        realm.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        realm.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run a throwaway MIT Kerberos realm on 127.0.0.1.")
    parser.add_argument("directory", help="directory for the realm's files (created; nothing goes to /etc)")
    parser.add_argument("--realm", default="HDFSFTPD.TEST")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="principal to add (repeatable) [alice:alice-secret]")
    args = parser.parse_args()
    users = dict(u.split(":", 1) for u in args.user) or {"alice": "alice-secret"}
    serve(args.directory, args.realm, users)
    sys.exit(0)
