"""The vLLM server `chatbot serve` starts (serving/vllm_server.py) where no serve.vllm_url is given: its command line,
what a machine without vLLM is told, how other processes on the home find it, and the clean-up of a server whose
app was killed. These run everywhere; the server itself runs in tests/serving/test_vllm.py (CUDA only)."""
import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import chatbot, free_port, tiny_config

from chatbot.core.config import Config
from chatbot.serving.engine import EngineError, open_engine
from chatbot.serving.vllm_server import VllmServer, installed, running_url, server_command


def test_the_command_serves_the_app_s_model_with_lora_sized_for_the_config():
    config = Config.from_dict({"train": {"lora_r": 12}, "model": {"max_context": 1024},
                               "serve": {"engine": "vllm", "max_loaded_adapters": 4,
                                         "vllm_args": "--gpu-memory-utilization 0.5 --dtype 'bfloat16'"}})
    cmd = server_command("/models/smol", 8123, config)
    assert cmd[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert flags["--model"] == "/models/smol" and flags["--host"] == "127.0.0.1" and flags["--port"] == "8123"
    assert "--enable-lora" in cmd
    assert cmd[cmd.index("--max-lora-rank") + 1] == "16"  # the next rank vLLM accepts above train.lora_r 12
    assert cmd[cmd.index("--max-loras") + 1] == "4" and cmd[cmd.index("--max-model-len") + 1] == "1024"
    assert cmd[-4:] == ["--gpu-memory-utilization", "0.5", "--dtype", "bfloat16"]


@pytest.mark.skipif(installed(), reason="vLLM is installed here: the real server is tested in test_vllm.py")
def test_serve_on_a_machine_without_vllm_says_what_to_do(tmp_path, tiny_model_dir):
    config = tmp_path / "config.toml"
    config.write_text(f'[model]\nsource = "{tiny_model_dir}"\nquantization = "none"\n[serve]\nengine = "vllm"\n')
    home = tmp_path / "home"
    p = chatbot(home, "serve", "--port", str(free_port()), config=config, check=False, timeout=240)
    assert p.returncode == 2, p.stderr
    assert "pip install vllm" in p.stderr and "serve.vllm_url" in p.stderr and "Traceback" not in p.stderr
    assert not (home / "vllm.json").exists()


def test_other_commands_find_the_app_s_server_or_say_how_to_get_one(tmp_path, tiny_model_dir, tiny_loaded):
    config = tiny_config(tiny_model_dir, serve={"engine": "vllm"})
    with pytest.raises(EngineError, match="chatbot serve"):
        open_engine(config, tiny_loaded, home=tmp_path)
    # a record left behind by a server that is gone, or a damaged one, is not a server
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "vllm.json").write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "pid": gone.pid}))
    assert running_url(tmp_path) is None
    (tmp_path / "vllm.json").write_text("{not json")
    assert running_url(tmp_path) is None
    with pytest.raises(EngineError, match="serve.vllm_url"):
        open_engine(config, tiny_loaded, home=tmp_path)


def _orphan_sleeper() -> int:
    """A process standing in for a server that outlived its app: in its own session, not our child (its parent
    exited), as the server of a killed app is. The clean-up only signals its process group."""
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
            "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(p.pid)")
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[-1].split()[0] != "Z"


def test_a_server_left_by_a_killed_app_is_stopped_and_a_running_app_s_is_left_alone(tmp_path):
    config = Config.from_dict({"serve": {"engine": "vllm"}})
    server = _orphan_sleeper()
    state = tmp_path / "vllm.json"
    try:
        state.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": server, "owner": os.getpid()}))
        with pytest.raises(EngineError, match="another app"):
            VllmServer(tmp_path, "model", config)._clear_stale()
        assert _alive(server) and state.exists()

        app = subprocess.Popen([sys.executable, "-c", "pass"])
        app.wait()  # the app that started the server was killed
        state.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": server, "owner": app.pid}))
        VllmServer(tmp_path, "model", config)._clear_stale()
        assert not _alive(server) and not state.exists()
    finally:
        if _alive(server):
            os.killpg(server, signal.SIGKILL)
