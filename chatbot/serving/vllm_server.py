"""The vLLM server `chatbot serve` starts when serve.engine = "vllm" and serve.vllm_url is empty: vLLM's
OpenAI-compatible server on the same base model, LoRA enabled, runtime adapter loading allowed, bound to
127.0.0.1 on a free port. While it runs, HOME/vllm.json says where it is, so the consolidation job (its own
process) and other commands on the same home use it instead of starting a second server on the GPU; it is
stopped with the app. Its output goes to HOME/runs/vllm.log.

The process is vLLM's own entry point (`python -m vllm.entrypoints.openai.api_server`), started with the
standard library (subprocess): there is nothing here a process-manager dependency would add."""
from __future__ import annotations

import importlib.util
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from chatbot.core.config import Config
from chatbot.core.fsio import read_json, write_json_atomic
from chatbot.core.paths import Paths
from chatbot.serving.engine import EngineError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 900  # first start downloads nothing (offline) but compiles CUDA graphs: minutes on a large model
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the values vLLM accepts for --max-lora-rank


def installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def server_command(model_path: str, port: int, config: Config) -> list[str]:
    """vLLM's server for `model_path` (the same Hugging Face folder or hub id the app loads) on 127.0.0.1:`port`:
    LoRA adapters up to train.lora_r, as many resident at once as serve.max_loaded_adapters, the app's context
    length; serve.vllm_args are appended as typed (e.g. "--gpu-memory-utilization 0.5")."""
    rank = next((r for r in LORA_RANKS if r >= config.train.lora_r), LORA_RANKS[-1])
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_path),
            "--host", "127.0.0.1", "--port", str(port), "--enable-lora", "--max-lora-rank", str(rank),
            "--max-loras", str(config.serve.max_loaded_adapters), "--max-model-len", str(config.model.max_context),
            *shlex.split(config.serve.vllm_args)]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Runs: signal 0 reaches it (a PermissionError = another user's process with that pid: not ours) and, where
    /proc tells, it has not exited unreaped (a zombie)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): signal 0 was answered


def _state(home: Path) -> dict | None:
    """HOME/vllm.json: the server's url and pid, and the pid of the app that started it."""
    info = read_json(Paths(home).vllm_state, {})
    try:
        return {"url": str(info["url"]), "pid": int(info["pid"]), "owner": int(info.get("owner", 0))}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def running_url(home: Path) -> str | None:
    """The URL of the server a `chatbot serve` on this home started, if it still runs and answers."""
    info = _state(home)
    return info["url"] if info and _alive(info["pid"]) and _healthy(info["url"]) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _signal_group(pid: int, sig: int) -> None:
    """`sig` to the server's process group (its own session: the server and the workers it forked)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class VllmServer:
    """One vLLM server process: `start` waits until it answers /health (or fails with its log's last lines),
    `stop` ends it and removes HOME/vllm.json."""

    def __init__(self, home: Path, model_path: str, config: Config):
        self.paths = Paths(home)
        self.state = self.paths.vllm_state
        self.log_path = self.paths.runs / "vllm.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = server_command(model_path, self.port, config)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = START_TIMEOUT_S, report: Callable[[str], None] = log.info) -> str:
        if not installed():
            raise EngineError("serve.engine = \"vllm\": vLLM is not installed in this environment. On a GPU server: "
                              "`pip install vllm`; or set serve.vllm_url to a running vLLM server; or use "
                              "serve.engine = \"auto\" (docs/engines.md)")
        self._clear_stale()
        self.paths.runs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        report(f"starting the vLLM server: {shlex.join(self.command)} (log: {self.log_path})")
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        started = time.monotonic()
        next_report = started + 30
        while not _healthy(self.url):
            if self.proc.poll() is not None:
                self.proc = None
                raise EngineError(f"the vLLM server exited while starting; the end of {self.log_path}:\n"
                                  f"{self._log_tail()}")
            if time.monotonic() - started > timeout:
                self.stop()
                raise EngineError(f"the vLLM server did not answer within {timeout:.0f} s; see {self.log_path}")
            if time.monotonic() > next_report:
                report(f"waiting for the vLLM server ({time.monotonic() - started:.0f} s; loading the model)")
                next_report += 30
            time.sleep(1)
        write_json_atomic(self.state, {"url": self.url, "pid": self.proc.pid, "owner": os.getpid()})
        report(f"vLLM server ready at {self.url} ({time.monotonic() - started:.0f} s)")
        return self.url

    def _clear_stale(self) -> None:
        """A server recorded for this home: refuse while the app that started it runs; stop it if that app is
        gone (killed without its cleanup), so that two servers never hold the GPU."""
        info = _state(self.paths.home)
        if info is None or not _alive(info["pid"]):
            self.state.unlink(missing_ok=True)
            return
        if info["owner"] and _alive(info["owner"]):
            raise EngineError(f"another app (pid {info['owner']}) runs a vLLM server for this home at {info['url']}: "
                              "stop it first, or point serve.vllm_url at that server")
        log.warning("stopping the vLLM server (pid %d) left by an app that is gone", info["pid"])
        _signal_group(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _alive(info["pid"]) and time.monotonic() < deadline:
            time.sleep(0.5)
        _signal_group(info["pid"], signal.SIGKILL)
        self.state.unlink(missing_ok=True)

    def stop(self) -> None:
        self.state.unlink(missing_ok=True)
        if self.proc is None:
            return
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
