"""Shared fixtures: a tiny random Llama (with the real SmolLM2 tokenizer and chat template) for unit tests,
the real embedder, and the real embedded model for integration tests. Converted models are cached in
$CHATBOT_TEST_CACHE (default ~/.cache/chatbot-tests) so only the first run pays the ~20 s GGUF conversion."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CACHE = Path(os.environ.get("CHATBOT_TEST_CACHE", Path.home() / ".cache" / "chatbot-tests"))


@pytest.fixture(scope="session")
def model_cache() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def embedded_dir(model_cache: Path) -> Path:
    """The embedded SmolLM2 converted to safetensors (real weights)."""
    from chatbot.serving.model import convert_gguf, embedded_gguf_path

    return convert_gguf(embedded_gguf_path(), model_cache)


@pytest.fixture(scope="session")
def tiny_model_dir(embedded_dir: Path, model_cache: Path) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: fast, and exercises every real code path."""
    return _tiny_llama(embedded_dir, model_cache / "tiny-llama-v3")


@pytest.fixture(scope="session")
def sharp_tiny_model_dir(embedded_dir: Path, model_cache: Path) -> Path:
    """The tiny Llama with larger embeddings (std 0.1 instead of 0.02). The tied output layer can then express
    confident next-token distributions, so training can visibly move them (KL, perplexity); with the default
    init every distribution is near uniform and even a collapsed model stays within any KL bound."""
    return _tiny_llama(embedded_dir, model_cache / "tiny-llama-sharp-v1", embedding_std=0.1)


def _tiny_llama(embedded_dir: Path, target: Path, embedding_std: float | None = None) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (target / "config.json").exists() and (target / "tokenizer_config.json").exists():
        return target
    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    # Zero the (tied) embedding rows of special and whitespace-only tokens: their logit is then 0 while the
    # best of 49k random logits is far above it, so greedy replies are visible text and never end on EOS.
    blank = [i for i in range(len(tokenizer)) if not tokenizer.decode([i]).strip()]
    with torch.no_grad():
        if embedding_std is not None:
            model.get_input_embeddings().weight.normal_(0.0, embedding_std)
        model.get_input_embeddings().weight[sorted(set(blank) | set(tokenizer.all_special_ids))] = 0.0
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)
    return target


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path):
    from chatbot.serving.model import load_model

    return load_model(str(tiny_model_dir), quantization="none")


@pytest.fixture(scope="session")
def embedder():
    from chatbot.memory.embed import Embedder

    return Embedder()


def tiny_config(tiny_model_dir: Path, **sections):
    """A Config pointing at the tiny model, unquantized, short replies, no noise-floor runs, each test's own
    epochs (no train.min_steps floor); override sections with dicts."""
    from chatbot.core.config import Config

    data = {"model": {"source": str(tiny_model_dir), "quantization": "none", "max_context": 512},
            "train": {"min_steps": 0},
            "decoding": {"max_new_tokens": 16},
            "probes": {"noise_runs": 0}}  # the gate still probes every candidate; the noise floor is tested on its own
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return Config.from_dict(data)


def random_lora(model_dir, folder: Path, seed: int, r: int = 4, alpha: int = 32, targets=("q_proj", "v_proj"),
                b_std: float | None = None) -> str:
    """A LoRA adapter with random non-zero weights (peft's init_lora_weights=False; `b_std`: lora_B drawn from
    N(0, b_std) instead) on the model in `model_dir`, saved in `folder` like an adapter version."""
    import torch
    from peft import LoraConfig, get_peft_model

    from chatbot.serving.model import load_model

    torch.manual_seed(seed)
    model = get_peft_model(load_model(str(model_dir), quantization="none").model,
                           LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=False))
    if b_std is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0.0, b_std)
    model.save_pretrained(folder)
    return str(folder)


def line(home: Path, user: str = "me"):
    """`user`'s adapter line (chatbot.core.lines) in a test home; "me" is serve.default_user."""
    from chatbot.core.lines import AdapterLines
    from chatbot.core.paths import Paths

    return AdapterLines(Paths(home).adapters, "me").line(user)


@pytest.fixture
def runtime(tmp_path: Path, tiny_model_dir: Path, tiny_loaded, embedder):
    from chatbot.runtime import open_runtime

    rt = open_runtime(tmp_path / "home", tiny_config(tiny_model_dir), loaded=tiny_loaded, embedder=embedder)
    yield rt
    rt.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_server(home: Path, timeout: float = 240, log_name: str = "serve.log") -> tuple[subprocess.Popen, str]:
    """Start `chatbot serve` on a free port for `home` (log in home/../log_name) and wait until it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(home.parent / log_name, "w")
    proc = subprocess.Popen([sys.executable, "-m", "chatbot", "--home", str(home), "serve", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}; see {home.parent / log_name}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise AssertionError(f"{url} did not come up in {timeout}s") from None
            time.sleep(0.5)


@contextlib.contextmanager
def serving(home: Path, timeout: float = 240):
    """Run `chatbot serve` on a free port for `home` (log in home/../serve.log); yields its URL."""
    proc, url = spawn_server(home, timeout)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def chatbot(home, *args, config=None, check=True, timeout=300):
    """Run the real `chatbot` command in a child process, as a user would."""
    cmd = [sys.executable, "-m", "chatbot", "--home", str(home)]
    if config:
        cmd += ["--config", str(config)]
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def import_facts(home, rows, tmp_path, name="facts.jsonl"):
    src = tmp_path / name
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    from chatbot.core.config import Config
    from chatbot.memory.transfer import import_jsonl
    from chatbot.runtime import open_runtime

    rt = open_runtime(home, Config(), with_model=False)
    try:
        import_jsonl(src, rt.store, rt.buffer, "me")
    finally:
        rt.close()
    return src


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run scripts/setup.sh --test (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
