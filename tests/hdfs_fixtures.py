"""Fixtures for the HDFS backend tests: harness.Daemon running the real hdfsftpd binary with `--storage hdfs`
on a real HDFS (the session's shared cluster, `hdfs_cluster` from tests/hdfs_cluster.py), permissions on.
Every server gets users of its own, made with `scripts/cluster/hdfs-cluster.sh add-user` (home /user/NAME, owned by
NAME, mode 0700), so tests on the shared cluster never see each other's files; sessions act as those users,
never as the HDFS superuser.

    start_hdfs_server(*extra_args) -> a started HdfsDaemon; each is stopped after the test, exit 0 expected
    hdfs_server -> start_hdfs_server() with no extra arguments

An HdfsDaemon's users: `user` (the default), `other`, and `browser`, whose home is /user (from where the
others' 0700 homes can be reached, and HDFS refuses). stat/read/write/ls look at HDFS through the
cluster's own Hadoop API, not through the gateway.

Needs HDFSFTPD_HADOOP_JARS (the client jar directory scripts/cluster/provision-hadoop.sh prints). Missing
prerequisites fail the tests; nothing is skipped.
"""

import pytest

from harness import Daemon, free_port, listen_args, users_auth_args, write_users_file
from harness import hadoop_jars as find_hadoop_jars
from hdfs_cluster import HdfsPath, unique_user

PASSWORD = "secret"


@pytest.fixture(scope="session")
def hadoop_jars():
    return find_hadoop_jars()


class HdfsDaemon(Daemon):
    def __init__(self, cluster, workdir, extra_args=()):
        self.cluster = cluster
        self.user, self.other, self.browser = unique_user("ann"), unique_user("bob"), unique_user("eve")
        for name in (self.user, self.other, self.browser):
            cluster.add_user(name, PASSWORD)
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        # An empty home is the default, /user/NAME.
        users_file = write_users_file(workdir / f"users-{port}", {
            self.user: (PASSWORD, "", "rw"), self.other: (PASSWORD, "", "rw"), self.browser: (PASSWORD, "/user", "rw"),
        })
        homes = {name: HdfsPath(cluster, f"/user/{name}", name, workdir) for name in (self.user, self.other)}
        storage = cluster.server_args()
        if "--jvm-opts" in extra_args:  # a flag is given once: the test's options replace the cluster's
            at = storage.index("--jvm-opts")
            del storage[at:at + 2]
        args = [*listen_args(port), *users_auth_args(users_file), *storage, "--login-fail-delay", "0", *extra_args]
        super().__init__(workdir, args, port=port, users={name: PASSWORD for name in (self.user, self.other,
                         self.browser)}, homes=homes, users_file=users_file, client_timeout=300)

    # What HDFS recorded, read without the gateway.
    def stat(self, name, user=None):
        return self.cluster.stat(f"{self.home(user)}/{name}")

    def read(self, name, user=None):
        return (self.home(user) / name).read_bytes()

    def write(self, name, data, user=None):
        (self.home(user) / name).write_bytes(data)

    def ls(self, user=None):
        return self.cluster.ls(str(self.home(user)))


@pytest.fixture
def start_hdfs_server(hdfs_cluster, hadoop_jars, tmp_path):
    """Starts servers with extra flags on the shared cluster; stops them (SIGTERM, exit 0 expected)."""
    servers = []

    def start(*extra_args):
        server = HdfsDaemon(hdfs_cluster, tmp_path / f"server{len(servers)}", extra_args)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        code = server.stop()
        assert code == 0, f"hdfsftpd exited with {code}:\n{server.log_tail()}"


@pytest.fixture
def hdfs_server(start_hdfs_server):
    return start_hdfs_server()
