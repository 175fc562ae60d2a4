"""The vLLM engine against a real vLLM server on the embedded model (converted to safetensors), LoRA enabled and
runtime adapter loading allowed. Runs only where CUDA and vllm are installed (a GPU server); skipped elsewhere."""
import importlib.util
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from conftest import free_port
from test_hot_swap import save_random_adapter

from chatbot.core.config import Config
from chatbot.core.registry import Registry
from chatbot.serving.engine import open_engine
from chatbot.serving.model import load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("vllm") is None,
                                reason="needs a CUDA device and `pip install vllm`")


@pytest.fixture(scope="module")
def vllm_server(embedded_dir, tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("vllm") / "server.log", "w")
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(embedded_dir),
                             "--port", str(port), "--enable-lora", "--max-lora-rank", "16", "--max-loras", "4",
                             "--gpu-memory-utilization", "0.3", "--max-model-len", "2048"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, "the vLLM server exited (see its server.log)"
            time.sleep(2)
    yield url
    proc.terminate()
    proc.wait(60)


def test_vllm_serves_each_adapter_by_name_and_hot_swaps(vllm_server, embedded_dir, tmp_path):
    config = Config.from_dict({"serve": {"engine": "vllm", "vllm_url": vllm_server},
                               "decoding": {"max_new_tokens": 16, "do_sample": False}})
    loaded = load_model(str(embedded_dir), quantization="none")
    engine = open_engine(config, loaded)
    registry = Registry(tmp_path / "line")
    v1 = save_random_adapter(embedded_dir, registry, 1)
    prompt = engine.build_prompt([{"role": "user", "content": "What is the capital of France?"}])
    base = engine.generate(prompt)
    tuned = engine.generate(prompt, adapter=(v1, str(registry.get(v1).path)))
    assert base and tuned and tuned != base
    assert engine.generate(prompt) == base  # the base again: a per-request choice, nothing sticks
    batch = engine.generate_batch([[{"role": "user", "content": "What is the capital of France?"}]] * 3, 16,
                                  do_sample=False)
    assert len(set(batch)) == 1


def test_the_app_starts_its_own_server_and_other_processes_find_it(embedded_dir, tmp_path, embedder):
    """serve.engine = "vllm" without a URL: the app's runtime starts vLLM for its home (as `chatbot serve` does),
    a second process on the home (the consolidation job) reaches the same server, and closing the app stops it."""
    from chatbot.runtime import open_runtime
    from chatbot.serving.vllm_server import running_url

    config = Config.from_dict({"model": {"source": str(embedded_dir), "quantization": "none"},
                               "serve": {"engine": "vllm", "max_loaded_adapters": 4,
                                         "vllm_args": "--gpu-memory-utilization 0.3"},
                               "decoding": {"max_new_tokens": 8}})
    loaded = load_model(str(embedded_dir), quantization="none")
    rt = open_runtime(tmp_path, config, loaded=loaded, embedder=embedder, start_server=True)
    try:
        url = running_url(tmp_path)
        assert url and rt.chat.generator.url == url
        other = open_engine(config, loaded, home=tmp_path)
        prompt = other.build_prompt([{"role": "user", "content": "Say hello."}])
        assert other.generate(prompt)
        pid = rt.vllm.proc.pid
    finally:
        rt.close()
    assert running_url(tmp_path) is None and not (tmp_path / "vllm.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
