"""Hot swap on every engine that runs here: a version promoted while people chat is served from the next reply on,
without restart and without a failed request (the vLLM engine's version of this runs where CUDA exists:
tests/serving/test_vllm.py)."""
import threading
import time

import pytest
from conftest import line, random_lora, tiny_config

from chatbot.core.config import Config
from chatbot.runtime import open_runtime
from chatbot.serving.chat import Accepted, Done
from chatbot.serving.engine import llamacpp_installed


def save_random_adapter(loaded_dir, registry, seed: int) -> str:
    """Commit a random non-zero LoRA adapter as the user's next version; returns its name."""
    staging = registry.staging()
    random_lora(loaded_dir, staging, seed)
    return registry.commit(staging).name


def engines():
    yield "transformers"
    if llamacpp_installed():
        yield "llamacpp"


@pytest.mark.parametrize("engine", list(engines()))
def test_promotion_while_chatting_is_served_from_the_next_reply(engine, tmp_path, tiny_model_dir, tiny_loaded,
                                                              embedded_dir, embedder):
    if engine == "transformers":
        model_dir, config = tiny_model_dir, tiny_config(tiny_model_dir, decoding={"max_new_tokens": 8})
        from chatbot.serving.model import LoadedModel
        loaded: LoadedModel = tiny_loaded
    else:
        from chatbot.serving.model import load_model

        model_dir = embedded_dir
        config = Config.from_dict({"model": {"quantization": "none"}, "decoding": {"max_new_tokens": 8},
                                   "serve": {"engine": "llamacpp"}})
        loaded = load_model(str(embedded_dir), quantization="none")
    home = tmp_path / "home"
    rt = open_runtime(home, config, loaded=loaded, embedder=embedder)
    assert rt.chat.generator.name == engine
    registry = line(home)
    v1, v2 = save_random_adapter(model_dir, registry, 1), save_random_adapter(model_dir, registry, 2)
    served: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def chat() -> None:
        try:
            while not done.is_set():
                events = list(rt.chat.send("me", "Tell me something."))
                assert isinstance(events[0], Accepted) and isinstance(events[-1], Done) and events[-1].text
                served.append(events[0].adapter)
        except BaseException as e:  # reported below
            errors.append(e)

    thread = threading.Thread(target=chat)
    thread.start()
    try:
        for version in (v1, v2):
            n = len(served)
            while len(served) < n + 2 and not errors:
                time.sleep(0.05)
            registry.promote(version)
        n = len(served)
        while len(served) < n + 2 and not errors:
            time.sleep(0.05)
    finally:
        done.set()
        thread.join()
        rt.close()
    assert not errors, errors
    # base first, then v1, then v2: each promotion is picked up by the next reply, never undone
    order = [a for i, a in enumerate(served) if i == 0 or served[i - 1] != a]
    assert order == ["base", v1, v2], served
