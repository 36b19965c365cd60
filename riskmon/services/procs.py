"""Start, watch and stop the local service processes (brokers, redis-server, workers).

Why a module of its own: every service riskmon starts for a demo, a replay or a test must be stoppable
as a unit and must never outlive the run that started it. So each process runs in its own session
(= its own process group, out of reach of the terminal's Ctrl-C, stopped by us in a known order), logs
to ``var/logs/<name>.log`` (the tail is shown when it fails to come up), and is registered in a
process-wide table that an ``atexit`` hook and SIGINT/SIGTERM handlers drain. Processes started with
``detach=True`` (``riskmon services up``) are deliberately left out of that table.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOG_TAIL_LINES = 40


class ServiceError(RuntimeError):
    """A service could not be installed, started, reached or stopped; the message says what to do."""


@dataclass
class Proc:
    """A process we started: its group is the unit we stop."""

    name: str
    pid: int
    log_path: Path
    start_ticks: int | None = None  # /proc/<pid>/stat start time: guards against pid reuse
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        """True while the process runs (a zombie counts as gone)."""
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid, self.start_ticks)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the process log, for error messages."""
        return log_tail(self.log_path, lines)


_registry: dict[int, Proc] = {}
_registry_lock = threading.Lock()
_handlers_installed = False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it; a tiny race with other starters remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Last ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        data = path.read_bytes()[-64_000:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def proc_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (None if unknown), from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """True if ``pid`` runs and is not a zombie (and, when given, has the same start time).

    Zombies count as dead because in containers PID 1 often never reaps re-parented children.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    rest = stat.rsplit(")", 1)[1].split()
    if rest[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(rest[19]) == start_ticks


def _set_parent_death_signal() -> None:
    """In the child: get SIGTERM if the parent dies (even by SIGKILL), so no broker is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    detach: bool = False,
) -> Proc:
    """Start ``argv`` in its own session, logging stdout+stderr to ``log_dir/<name>.log``.

    ``detach=False`` (the default) registers the process for the atexit/signal safety net and asks the
    kernel to signal it when this process dies. ``detach=True`` is for processes that must survive us
    (``riskmon services up``): the caller records the pid and someone stops it later.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only use it from the main thread.
    use_pdeathsig = not detach and threading.current_thread() is threading.main_thread()
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(cwd) if cwd else None,
                env=full_env,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal if use_pdeathsig else None,
            )
        except OSError as exc:
            raise ServiceError(f"cannot start {name}: {argv[0]}: {exc}") from exc
    proc = Proc(name=name, pid=popen.pid, log_path=log_path, start_ticks=proc_start_ticks(popen.pid),
                popen=popen)
    if not detach:
        _install_safety_net()
        with _registry_lock:
            _registry[proc.pid] = proc
    return proc


def wait_until(
    proc: Proc,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> None:
    """Poll ``ready()`` until it returns True; fail fast (with the log tail) if ``proc`` exits.

    ``ready`` may raise: any exception counts as "not yet". On timeout the process is left to the
    caller (who usually stops it) and the error shows the last exception and the log tail.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            if ready():
                return
        except Exception as exc:  # readiness probes fail in many ways until the service is up
            last_exc = exc
        if not proc.alive():
            code = proc.popen.poll() if proc.popen is not None else None
            raise ServiceError(
                f"{proc.name} exited (code {code}) before {what}. Log {proc.log_path}:\n{proc.log_tail()}"
            )
        if time.monotonic() >= deadline:
            hint = f" (last probe error: {last_exc!r})" if last_exc else ""
            raise ServiceError(
                f"{proc.name} not ready after {timeout:.0f}s waiting for {what}{hint}. "
                f"Log {proc.log_path}:\n{proc.log_tail()}"
            )
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(proc: Proc, host: str, port: int, *, timeout: float) -> None:
    """Wait until ``proc`` accepts TCP connections on host:port (see :func:`wait_until`)."""
    wait_until(proc, lambda: port_open(host, port), timeout=timeout, what=f"listening on {host}:{port}")


def stop_group(pid: int, *, start_ticks: int | None = None, timeout: float = 10.0,
               popen: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM the process group led by ``pid``, then SIGKILL it after ``timeout`` seconds.

    Returns True if something was signalled. ``start_ticks`` (from :func:`proc_start_ticks`) makes
    sure a recycled pid is never killed.
    """
    if not pid_alive(pid, start_ticks):
        if popen is not None:
            with contextlib.suppress(Exception):
                popen.wait(timeout=0)
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=0.05)
        if not pid_alive(pid, start_ticks):
            break
        time.sleep(0.05)
    else:
        _signal_group(pid, signal.SIGKILL)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
    # Members of the group that outlive the leader (none expected) get the last word too.
    _signal_group(pid, signal.SIGKILL)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop(proc: Proc, *, timeout: float = 10.0) -> None:
    """Stop ``proc`` and its whole process group; idempotent."""
    try:
        stop_group(proc.pid, start_ticks=proc.start_ticks, timeout=timeout, popen=proc.popen)
    finally:
        with _registry_lock:
            _registry.pop(proc.pid, None)


def running() -> list[Proc]:
    """Processes started (not detached) by this process and not yet stopped."""
    with _registry_lock:
        return list(_registry.values())


def stop_all(timeout: float = 10.0) -> None:
    """Stop every registered process, newest first (workers before the brokers they use)."""
    for proc in reversed(running()):
        with contextlib.suppress(Exception):
            stop(proc, timeout=timeout)


def _install_safety_net() -> None:
    """Hook atexit and SIGINT/SIGTERM once, chaining to whatever handler was there before."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(stop_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        signal.signal(sig, _make_handler(sig, previous))


def _make_handler(sig: int, previous: object) -> Callable[[int, object], None]:
    def handler(signum: int, frame: object) -> None:
        stop_all(timeout=5.0)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:  # SIG_DFL: die the way we would have died without the handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler
