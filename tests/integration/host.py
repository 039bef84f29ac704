"""Boot and stop a real ComfyUI host (made by scripts/setup_host.sh) on a free loopback port.

As a library: `with Host(root).start(log) as host: ... host.url ...`.
As a script (used by scripts/start_host.sh):
    python host.py start [--root DIR] [--log FILE]   -> prints "PORT PID" once /system_stats answers
    python host.py stop PID
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def default_root() -> Path:
    """$REVERIE_HOST, else the host whose venv runs this Python (HOST/venv/bin/python)."""
    return Path(os.environ.get("REVERIE_HOST") or Path(sys.prefix).parent).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_host(root: Path) -> bool:
    return (root / "comfyui" / "main.py").is_file() and (root / "venv" / "bin" / "python").is_file()


class Host:
    """One ComfyUI server process; `pid` is the python process itself, so stopping it stops the server."""

    def __init__(self, root: Path | None = None, base: Path | None = None):
        self.root = Path(root or default_root()).resolve()
        self.base = Path(base or self.root / "base").resolve()
        if not is_host(self.root):
            raise FileNotFoundError(f"no ComfyUI host at {self.root}: run scripts/setup_host.sh {self.root}")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self, log: Path, *extra: str, timeout: float = 180, detach: bool = False) -> "Host":
        """Launch, then wait until /system_stats answers. `detach` lets the server outlive this process."""
        self.port, self.log = free_port(), Path(log)
        cmd = [str(self.root / "venv" / "bin" / "python"), "main.py", "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.base),
               "--database-url", "sqlite:///:memory:", "--disable-auto-launch", *extra]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=self.root / "comfyui", stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=detach)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.proc.returncode} while booting; log:\n"
                                   + self.log_text()[-4000:])
            try:
                urllib.request.urlopen(self.url + "/system_stats", timeout=2).close()
                return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout:.0f} s; log: {self.log}")

    def stop(self, timeout: float = 20) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def __enter__(self) -> "Host":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def stop_pid(pid: int, timeout: float = 20) -> None:
    """Stop a server started by `start --detach` from another process: SIGTERM, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    start = sub.add_parser("start", help="boot a server that keeps running; prints PORT PID")
    start.add_argument("--root", type=Path, default=None, help="host directory (default: $REVERIE_HOST or this venv's)")
    start.add_argument("--log", type=Path, default=None, help="server log (default: ROOT/server.log)")
    stop = sub.add_parser("stop", help="stop a server by pid")
    stop.add_argument("pid", type=int)
    args = ap.parse_args(argv)
    if args.cmd == "stop":
        stop_pid(args.pid)
        return 0
    host = Host(args.root)
    try:
        host.start(args.log or host.root / "server.log", detach=True)
    except (RuntimeError, TimeoutError) as e:
        print(e, file=sys.stderr)
        return 1
    print(host.port, host.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
