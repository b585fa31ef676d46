"""Run a command with a local Prefect server, so every stage reports to one UI.

    python -m flows.server -- dvc repro          # start a server on 127.0.0.1, run, stop
    python -m flows.server --keep -- dvc repro   # leave the server running afterwards

Without a server, each stage process starts one temporary server (10-20 s on a 2-core machine),
shared with its workers (stages.common.share_prefect_api); with one, a stage's flow run costs
about a second (`bench/orchestration.py --overhead` measures both). If `PREFECT_API_URL` is
already set, the command simply runs against that server.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(api_url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"prefect server at {api_url} not healthy after {timeout:.0f} s")


@contextmanager
def prefect_server(port: int | None = None, log_path: str | None = None) -> Iterator[str]:
    """Start `prefect server start` on 127.0.0.1; yield its API URL; stop it on exit."""
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_API_URL": api_url}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(api_url, proc)
        yield api_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    ap.add_argument("--keep", action="store_true", help="leave the server running after the command")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given (e.g. python -m flows.server -- dvc repro)")
    if os.environ.get("PREFECT_API_URL"):
        return subprocess.call(cmd)
    os.makedirs(os.environ.get("PREFECT_HOME", ".prefect"), exist_ok=True)
    if args.keep:
        port = args.port or 4200
        api_url = f"http://127.0.0.1:{port}/api"
        subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                          str(port)], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_healthy(api_url)
        print(f"Prefect UI: http://127.0.0.1:{port}  (PREFECT_API_URL={api_url})", flush=True)
        return subprocess.call(cmd, env={**os.environ, "PREFECT_API_URL": api_url})
    with prefect_server(args.port, log_path=os.path.join(os.environ.get("PREFECT_HOME", ".prefect"), "server.log")) as api_url:
        print(f"Prefect server: {api_url}", flush=True)
        return subprocess.call(cmd, env={**os.environ, "PREFECT_API_URL": api_url})


if __name__ == "__main__":
    sys.exit(main())
