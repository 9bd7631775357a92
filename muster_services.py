"""Throwaway PostgreSQL and Redis servers on loopback, for the tests, benchmarks and manual work.

Stdlib only and importable without Django, so `./musterctl`, CI and `bench/` share it:

    from muster_services import running_services

    with running_services() as services:
        env = {**os.environ, **services.env()}
        ...  # DATABASE_URL and REDIS_URL point at fresh, empty servers

Each call gets its own temporary directory and free ports, so several runs can share a machine.
Both servers vanish with their data on exit. PostgreSQL is tuned for speed over durability (no
fsync) unless asked to be `durable`, as the benchmarks do: a production server flushes its WAL
before every commit returns, and an accepted alert is one commit.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PG_ROLE = "muster"
PG_DATABASE = "muster"
START_TIMEOUT_SECONDS = 30.0
PORT_ATTEMPTS = 3

PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "jit": "off",
}
# Durability is worthless for a database that is deleted afterwards; these make tests fast.
PG_FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class ServiceError(RuntimeError):
    """A throwaway server could not be found or started; the message says why and what to do."""


@dataclass(frozen=True)
class Services:
    """The addresses of a running pair of throwaway servers."""

    database_url: str
    redis_url: str
    pg_port: int
    redis_port: int
    processes: tuple[subprocess.Popen, ...] = field(default=(), repr=False, compare=False)

    def env(self) -> dict[str, str]:
        """Return the environment variables that point Muster at these servers."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "MUSTER_TEST_SERVICES": "1",
            # Throwaway servers, no Twilio and no mail server: pages go to the console outbox
            # on purpose (production refuses to start that way without this).
            "MUSTER_ALLOW_CONSOLE_DELIVERY": "1",
        }

    def check_alive(self) -> None:
        """Raise ServiceError if either server has exited."""
        for name, process in zip(("PostgreSQL", "Redis"), self.processes, strict=False):
            if process.poll() is not None:
                raise ServiceError(f"{name} exited unexpectedly with code {process.returncode}")


@contextlib.contextmanager
def running_services(
    base_dir: Path | None = None, *, durable: bool = False, statements: bool = False
) -> Iterator[Services]:
    """Start PostgreSQL and Redis on free loopback ports, yield them, then stop and delete them.

    `base_dir` holds the temporary directory (default: the system's temp dir). When running as
    root, the servers run as the `postgres` user (or `nobody`), which must be able to reach it.
    `durable` keeps PostgreSQL's defaults: fsync, synchronous commit, full-page writes.
    `statements` loads pg_stat_statements (`CREATE EXTENSION pg_stat_statements` to read it).
    """
    pg_bin = find_postgres_bindir()
    redis_server = find_redis_server()
    user = _service_user()
    prefix = _run_as_prefix(user)
    root = Path(tempfile.mkdtemp(prefix="muster-services-", dir=base_dir)).resolve()
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        stack.enter_context(_sigterm_raises_systemexit())
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
            _check_reachable(prefix, root, user.pw_name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

        _init_postgres(prefix, pg_bin, root, env, durable, statements)
        postgres_argv = [*prefix, str(pg_bin / "postgres"), "-D", str(root / "pgdata"), "-p"]
        postgres, pg_port = _start(
            "PostgreSQL",
            lambda port: [*postgres_argv, str(port)],
            lambda port: _postgres_ready(pg_bin, port),
            root / "postgres.log",
            env,
        )
        stack.callback(_stop, postgres, signal.SIGQUIT)  # SIGQUIT: immediate shutdown
        createdb = [str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg_port)]
        _run([*createdb, "-U", PG_ROLE, PG_DATABASE], "createdb", root / "createdb.log", env)

        redis_argv = [*prefix, str(redis_server), "--bind", "127.0.0.1", "--dir", str(root)]
        redis_argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--port"]
        redis, redis_port = _start(
            "Redis", lambda port: [*redis_argv, str(port)], _redis_ready, root / "redis.log", env
        )
        stack.callback(_stop, redis, signal.SIGTERM)

        yield Services(
            database_url=f"postgres://{PG_ROLE}:{PG_ROLE}@127.0.0.1:{pg_port}/{PG_DATABASE}",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            pg_port=pg_port,
            redis_port=redis_port,
            processes=(postgres, redis),
        )


def find_postgres_bindir() -> Path:
    """Return the directory holding PostgreSQL's server binaries (initdb, postgres)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            candidates.append(Path(out))
    # Debian keeps server binaries off PATH; with several majors installed, prefer the newest.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "postgres", "createdb")):
            return bindir
    raise ServiceError(
        "PostgreSQL server binaries (initdb, postgres) not found. "
        "On Debian/Ubuntu: apt-get install postgresql"
    )


def find_redis_server() -> Path:
    """Return the path of the redis-server binary."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).is_file()), None
    )
    if not found:
        raise ServiceError("redis-server not found. On Debian/Ubuntu: apt-get install redis-server")
    return Path(found)


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _version_key(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)


def _service_user() -> pwd.struct_passwd | None:
    """Return the user to run the servers as: None for ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    # PostgreSQL refuses to run as root.
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServiceError("running as root, but there is no 'postgres' or 'nobody' user to run as")


def _run_as_prefix(user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise ServiceError("setpriv not found. On Debian/Ubuntu: apt-get install util-linux")
    # setpriv execs in place (unlike runuser, which forks), so our Popen's pid is the server's.
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--"]


def _check_reachable(prefix: list[str], root: Path, user: str) -> None:
    if subprocess.run([*prefix, "test", "-w", str(root)], cwd="/", check=False).returncode:
        raise ServiceError(
            f"user {user!r} cannot write to {root}: a parent directory is closed to it. "
            "Pass a base_dir (or set TMPDIR) under a directory it can reach, such as /tmp."
        )


def _init_postgres(
    prefix: list[str],
    pg_bin: Path,
    root: Path,
    env: dict[str, str],
    durable: bool,
    statements: bool = False,
) -> None:
    pgdata = root / "pgdata"
    initdb = [*prefix, str(pg_bin / "initdb"), "-D", str(pgdata), "-U", PG_ROLE, "--auth=trust"]
    initdb += ["--encoding=UTF8", "--locale=C", "--no-sync"]
    _run(initdb, "initdb", root / "initdb.log", env)
    settings = {**PG_SETTINGS, **({} if durable else PG_FAST)}
    settings["unix_socket_directories"] = f"'{root}'"
    if statements:
        settings["shared_preload_libraries"] = "'pg_stat_statements'"
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write("\n# muster_services: a throwaway server\n")
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


def _run(argv: list[str], what: str, log: Path, env: dict[str, str]) -> None:
    with log.open("ab") as out:
        try:
            code = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent, timeout=120
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
    if code != 0:
        raise ServiceError(
            f"{what} failed (exit code {code}); the end of {log.name}:\n{_tail(log)}"
        )


def _start(
    name: str,
    argv_for_port: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    log: Path,
    env: dict[str, str],
) -> tuple[subprocess.Popen, int]:
    """Start a server on a free port, retrying another port if that one was taken meanwhile."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        with log.open("ab") as out:
            # A session of its own: a Ctrl-C in the terminal reaches us, and we stop it in order.
            process = subprocess.Popen(
                argv_for_port(port),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=log.parent,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if ready(port):
                    return process, port
                time.sleep(0.05)
        except BaseException:
            _stop(process, signal.SIGKILL)
            raise
        exit_code = process.poll()
        _stop(process, signal.SIGKILL)
        tail = _tail(log)
        if exit_code is not None and "in use" in tail and attempt < PORT_ATTEMPTS:
            continue  # another process took the port between free_port() and the bind
        problem = (
            f"did not accept connections within {START_TIMEOUT_SECONDS:.0f}s"
            if exit_code is None
            else f"exited with code {exit_code}"
        )
        raise ServiceError(f"{name} {problem}; the end of {log.name}:\n{tail}")
    raise AssertionError("unreachable")


def _postgres_ready(pg_bin: Path, port: int) -> bool:
    probe = [str(pg_bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"]
    return subprocess.run([*probe, "-U", PG_ROLE, "-d", "postgres"], check=False).returncode == 0


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Stop a server with `sig`, or SIGKILL if it lingers; PostgreSQL reaps its own backends."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(log: Path, lines: int = 30) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (empty log)"


@contextlib.contextmanager
def _sigterm_raises_systemexit() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit while servers run, so a killed caller cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            previous[sig] = signal.signal(sig, _raise_systemexit)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _raise_systemexit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
