import threading

from conftest import random_lora

from chatbot.core.config import DecodingConfig
from chatbot.serving.generate import Generator


def gen(tiny_loaded, **decoding) -> Generator:
    return Generator(tiny_loaded, DecodingConfig(**{"max_new_tokens": 12, **decoding}), max_context=256)


def test_stream_yields_pieces_and_is_seeded(tiny_loaded):
    g = gen(tiny_loaded, do_sample=True, seed=5)
    prompt = g.build_prompt([{"role": "user", "content": "hello"}])
    a = list(g.stream(prompt))
    b = list(g.stream(prompt))
    assert len(a) > 1 and "".join(a) == "".join(b)  # streamed in pieces; same seed, same sampled text


def test_stop_event_really_stops_generation(tiny_loaded):
    g = gen(tiny_loaded, max_new_tokens=200)
    # Never emit EOS, so only the stop signal can end generation before 200 tokens.
    prompt = g.build_prompt([{"role": "user", "content": "count"}])
    stop = threading.Event()
    pieces = []
    for piece in g.stream(prompt, stop=stop, suppress_tokens=[tiny_loaded.tokenizer.eos_token_id]):
        pieces.append(piece)
        if len(pieces) == 3:
            stop.set()
    full = g.count_tokens("".join(pieces))
    assert full < 20, full
    assert g._lock.acquire(timeout=5)  # the model is free again
    g._lock.release()


def test_abandoned_stream_frees_the_model(tiny_loaded):
    g = gen(tiny_loaded, max_new_tokens=200)
    prompt = g.build_prompt([{"role": "user", "content": "count"}])
    it = g.stream(prompt, suppress_tokens=[tiny_loaded.tokenizer.eos_token_id])
    next(it)
    it.close()  # the browser went away
    assert g._lock.acquire(timeout=5)
    g._lock.release()


def test_long_message_is_truncated_with_notice(tiny_loaded):
    g = gen(tiny_loaded)
    long = "start " + "word " * 2000 + "the question at the end?"
    prompt = g.build_prompt([{"role": "user", "content": long}])
    assert prompt.n_tokens <= 256 - 12
    assert any("saw only" in n for n in prompt.notices)
    text = tiny_loaded.tokenizer.decode(prompt.input_ids[0])
    assert "start" in text and "question at the end?" in text


def test_history_dropped_before_the_current_message(tiny_loaded):
    g = gen(tiny_loaded)
    history = []
    for i in range(40):
        history += [{"role": "user", "content": f"message {i} " * 5}, {"role": "assistant", "content": "ok " * 5}]
    history.append({"role": "user", "content": "final question"})
    prompt = g.build_prompt([{"role": "system", "content": "notes"}, *history])
    assert prompt.n_tokens <= 256 - 12
    assert "left out" in prompt.notices[0]
    text = tiny_loaded.tokenizer.decode(prompt.input_ids[0])
    assert "final question" in text and "notes" in text and "message 0 " not in text


def random_adapters(tiny_model_dir, folder, n: int) -> list[str]:
    """n LoRA adapters with random (non-zero) weights, saved like adapter versions."""
    return [random_lora(tiny_model_dir, folder / f"v{i + 1:04d}", 100 + i, alpha=64) for i in range(n)]


def test_several_users_adapters_stay_loaded_up_to_the_lru_bound(tiny_model_dir, tmp_path):
    """Each generation runs on the adapter it names (same greedy reply as that adapter loaded alone), whatever
    was served before it; past max_adapters the least recently used one is unloaded, and loaded again when its
    user comes back."""
    from peft import PeftModel

    from chatbot.serving.model import load_model

    paths = random_adapters(tiny_model_dir, tmp_path, 3)
    names = ["v0001", "v0002", "v0003"]
    reference = {}
    for name, path in zip(names, paths):
        alone = Generator(load_model(str(tiny_model_dir), quantization="none"), DecodingConfig(max_new_tokens=12), 256)
        alone.use_adapter(name, path)
        reference[name] = alone.generate(alone.build_prompt([{"role": "user", "content": "hello"}]))
    plain = gen(load_model(str(tiny_model_dir), quantization="none"))
    reference["base"] = plain.generate(plain.build_prompt([{"role": "user", "content": "hello"}]))
    assert len(set(reference.values())) == 4  # the adapters really change the replies

    g = Generator(load_model(str(tiny_model_dir), quantization="none"), DecodingConfig(max_new_tokens=12), 256,
                  max_adapters=2)
    prompt = g.build_prompt([{"role": "user", "content": "hello"}])
    order = ["v0001", "v0002", "v0001", "base", "v0003", "v0002", "v0003", "v0001"]
    for name in order:
        adapter = (name, None if name == "base" else paths[names.index(name)])
        assert g.generate(prompt, adapter=adapter) == reference[name], name
        assert len(g.loaded_adapters) <= 2
    assert g.loaded_adapters == ["v0003", "v0001"]  # v0002 was the least recently used one: unloaded
    assert isinstance(g._peft, PeftModel) and set(g._peft.peft_config) == {"v0003", "v0001"}
