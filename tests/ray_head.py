"""A throwaway local Ray head with token authentication, for the live cluster tests.

It runs ``ray start --head --block`` on 127.0.0.1 with free ports, its own temp dir
and a token generated here, and stops only what it started: the blocking ``ray
start`` (which takes its Ray processes down with it) and, as a backstop, any process
whose command line names this head's temp dir.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS",
             "RAY_API_SERVER_ADDRESS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: Path) -> Dict[str, str]:
    """This process's environment with no Ray address or token, and an empty HOME."""
    env = {k: v for k, v in os.environ.items() if k not in AUTH_VARS}
    env["HOME"] = str(home)  # so ~/.ray/auth_token of the machine is not picked up
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class RayHead:
    address: str  # the dashboard, where jobs are submitted
    temp_dir: Path
    token_path: Path
    process: subprocess.Popen

    def client_env(self, home: Path) -> Dict[str, str]:
        """A client holding the token through RAY_AUTH_TOKEN_PATH (RAY_AUTH_MODE left unset)."""
        return {**clean_env(home), "RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    def pids(self) -> List[int]:
        """Processes of this head: those naming its temp dir, and their descendants."""
        children: Dict[int, List[int]] = {}
        roots = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
            if str(self.temp_dir) in cmdline and int(entry.name) != os.getpid():
                roots.append(int(entry.name))
        seen, stack = set(), list(roots)
        while stack:
            pid = stack.pop()
            if pid not in seen:
                seen.add(pid)
                stack.extend(children.get(pid, []))
        return sorted(seen)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(num_cpus: int = 2, timeout_s: float = 120, attempts: int = 2) -> RayHead:
    """Starts a head; a ``ray start`` that exits at once (seen once in a full run, e.g.
    a port taken between ``free_port`` and its use) is retried on fresh ports."""
    for attempt in range(attempts):
        try:
            return _start_head(num_cpus, timeout_s)
        except HeadExited as err:
            if attempt == attempts - 1:
                raise
            print(f"ray_head: retrying after: {err}", file=sys.stderr)
    raise AssertionError("unreachable")


class HeadExited(RuntimeError):
    """``ray start`` ended before its dashboard answered."""


def _start_head(num_cpus: int, timeout_s: float) -> RayHead:
    # Short path: Ray's Unix sockets live under the temp dir (108-byte limit).
    temp = Path(tempfile.mkdtemp(prefix="mmh-", dir="/tmp"))
    token = temp / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**clean_env(temp / "home"), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token)}
    dashboard = free_port()
    ray = str(Path(sys.executable).parent / "ray")
    cmd = [ray, "start", "--head", "--block", f"--port={free_port()}",
           "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
           f"--dashboard-port={dashboard}", f"--ray-client-server-port={free_port()}",
           f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={temp}",
           f"--num-cpus={num_cpus}", "--num-gpus=0", "--include-dashboard=true",
           "--disable-usage-stats"]
    log = open(temp / "ray_start.log", "w")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    head = RayHead(f"http://127.0.0.1:{dashboard}", temp, token, process)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if process.poll() is not None:
            log.flush()
            output = (temp / "ray_start.log").read_text()[-3000:]  # stop() deletes it
            head.stop()
            raise HeadExited(f"ray start exited ({process.returncode}): {output}")
        try:
            urllib.request.urlopen(head.address + "/api/version", timeout=2)
            return head
        except urllib.error.HTTPError:
            return head  # 401: up, and asking for the token
        except OSError:
            time.sleep(1)
    head.stop()
    raise RuntimeError(f"Ray dashboard not up at {head.address} after {timeout_s} s")
