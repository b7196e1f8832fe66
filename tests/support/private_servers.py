"""Private servers a test may really stop, start and kill, unlike the shared ones on 5432 and 5672:
a throwaway PostgreSQL cluster (initdb into a tmp dir, a free port) and a RabbitMQ node of its own
(its own node name, AMQP and distribution ports, data and log directories, config file, no
plugins). Run as root, each server runs as its service user (`runuser`), since Postgres refuses
to run as root and the RabbitMQ CLI authenticates with that user's Erlang cookie.

Only processes started here are ever signalled, by pid; the shared servers are never touched.
`available()` tells whether this machine has the server binaries; tests that need them skip
where they are missing, and fail under CI=true (see `require_private_servers`).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

RABBIT_SCRIPTS = Path("/usr/lib/rabbitmq/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user(user: str, command: list[str]) -> list[str]:
    """`command` run as `user` when we are root (the servers refuse root or need its cookie)."""
    return ["runuser", "-u", user, "--", *command] if os.geteuid() == 0 else command


def _chown_tree(root: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(root, user, user)


def server_bin() -> Path | None:
    """The directory of PostgreSQL's initdb and pg_ctl, None where they are not installed."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def rabbit_scripts() -> Path | None:
    """The directory of rabbitmq-server and rabbitmqctl (the real scripts, not the wrappers)."""
    on_path = shutil.which("rabbitmqctl")
    # As root, the packaged scripts directly: the /usr/sbin wrappers `su` and drop our variables.
    candidates = [RABBIT_SCRIPTS]
    if on_path and os.geteuid() != 0:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "rabbitmq-server").exists() and (candidate / "rabbitmqctl").exists():
            return candidate
    return None


def require_private_servers() -> None:
    """Skip where the server binaries are missing (a laptop); fail under CI=true."""
    missing = [
        name
        for name, found in (("PostgreSQL", server_bin()), ("RabbitMQ", rabbit_scripts()))
        if found is None
    ]
    if not missing:
        return
    message = f"{' and '.join(missing)} server binaries not installed"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI=true: the reliability suite must run, not skip)")
    pytest.skip(message)


class PrivatePostgres:
    def __init__(self, root: Path | None = None) -> None:
        root = root or Path(tempfile.mkdtemp(prefix="ktrdr-pg-"))
        binaries = server_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bin, self.root = binaries, root
        self.data, self.log = root / "data", root / "server.log"
        self.port = free_port()
        _chown_tree(root, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, database: str = "postgres") -> str:
        """A plain libpq/asyncpg DSN."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = _as_user("postgres", [str(self.bin / tool), *args])
        subprocess.run(command, check=True, capture_output=True, timeout=60)


class PrivateRabbit:
    """A RabbitMQ node of our own: `start()`, `stop()` (rabbitmqctl stop), `kill()` (SIGKILL to
    the node's own pid), `destroy()`. Its data survives stop/start and kill, like a real node's.
    `consumer_timeout_ms` sets the broker's delivery-ack timeout for this node only."""

    def __init__(self, root: Path | None = None, *, consumer_timeout_ms: int | None = None) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and the node runs as
        # the rabbitmq user.
        root = root or Path(tempfile.mkdtemp(prefix="ktrdr-rabbit-"))
        scripts = rabbit_scripts()
        if scripts is None:
            raise RuntimeError("RabbitMQ server scripts (rabbitmq-server, rabbitmqctl) not found")
        self.scripts, self.root = scripts, root
        self.node = f"ktrdr-{uuid.uuid4().hex[:10]}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        self.pid_file, self.log = root / "node.pid", root / "console.log"
        for folder in ("mnesia", "log"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        plugins = root / "enabled_plugins"
        plugins.write_text("[].\n")
        config = [
            f"listeners.tcp.default = 127.0.0.1:{self.port}",
            "loopback_users.guest = true",
            "disk_free_limit.absolute = 50MB",
        ]
        if consumer_timeout_ms is not None:
            config.append(f"consumer_timeout = {consumer_timeout_ms}")
        (root / "rabbitmq.conf").write_text("\n".join(config) + "\n")
        if os.geteuid() == 0:
            for path in (root, root / "mnesia", root / "log", plugins, root / "rabbitmq.conf"):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.pid_file),
        )
        return env

    def start(self, within_s: float = 90) -> None:
        log = self.log.open("ab")
        self._process = subprocess.Popen(
            _as_user("rabbitmq", [str(self.scripts / "rabbitmq-server")]),
            env=self._env(),
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the test run reaches it only through stop()
        )
        log.close()
        # `wait` follows the pid file the node writes, then waits for the broker app to run.
        try:
            wait_s = str(int(within_s))
            self.ctl("wait", str(self.pid_file), "--timeout", wait_s, timeout=within_s + 10)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"private RabbitMQ did not start: {error}\n{tail}") from None

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """rabbitmqctl against this node only."""
        command = _as_user("rabbitmq", [str(self.scripts / "rabbitmqctl"), "-n", self.node, *args])
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        """A clean shutdown (`rabbitmqctl -n NODE stop`), waiting for the node to be gone."""
        self.ctl("stop", timeout=90)
        self._reap()

    def kill(self) -> None:
        """SIGKILL to this node's own process (kill -9 of the broker)."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError("the private broker has no pid file: not started?")
        os.kill(pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()  # runuser, which we started
                self._process.wait(10)
            self._process = None
        deadline = time.monotonic() + 30
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)  # the port is the only sign left of a node that is going away
        self.pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                self.stop()
            except (RuntimeError, subprocess.TimeoutExpired):
                self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
