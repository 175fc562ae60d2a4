"""LoRA / QLoRA training of one adapter version with the transformers Trainer and peft.

Reads top to bottom: tokenize (loss on assistant tokens only) → attach the adapter (continue from the current
version, or a fresh LoRA on the frozen, possibly 4-bit base) → hooks.before_training → Trainer.train (loss +
hook penalties) → save. Forgetting mitigations are hooks with `before_training(model, batches)`,
`penalty(model)` and `after_training(model)` (see ewc.py); replay and rehearsal live in the data mix."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from chatbot.core.config import TrainConfig
from chatbot.learning.mix import Example

log = logging.getLogger(__name__)
IGNORE = -100  # label id the loss skips
ANCHOR = "anchor"  # a training example's index among the hook examples (-1: none), for hooks that work in the batch


class Hook(Protocol):
    """A hook whose `in_batch` is true (distillation with train.distill_in_batch) also has
    `batch_penalty(logits, attention_mask, anchors)`: the trainer calls it on a batch's own logits instead of
    `penalty` when the batch holds one of its examples (`penalty` still serves a batch that holds none), and
    `before_training` gets its examples one by one."""
    name: str

    def before_training(self, model: torch.nn.Module, batches) -> None: ...
    def penalty(self, model: torch.nn.Module) -> torch.Tensor: ...
    def after_training(self, model: torch.nn.Module) -> None: ...


def tokenize_example(tokenizer, messages: list[dict], max_len: int) -> dict:
    """Chat-template the messages; labels are the token ids of assistant contents (and their end-of-turn
    marker), IGNORE elsewhere. Assistant spans are found by rendering prefixes, so any chat template works."""
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start = len(tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True))
        end = len(tokenizer.apply_chat_template(messages[: i + 1], tokenize=False))
        spans.append((start, end))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=True, max_length=max_len)
    labels = [
        tok if any(s <= a < e for s, e in spans) and b > a else IGNORE
        for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"])
    ]
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


class _HookedTrainer(Trainer):
    """Trainer whose loss adds every hook's penalty (EWC …), or for a hook that works in the batch (distillation with
    train.distill_in_batch) its penalty on this batch's logits where the batch holds one of its examples; it also
    counts real vs padded tokens."""

    def __init__(self, *args, hooks: Sequence[Hook] = (), per_example: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.hooks = list(hooks)
        self.per_example = per_example
        self.real_tokens = 0
        self.padded_tokens = 0

    def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
        anchors = inputs.pop(ANCHOR, None)  # per row: its index among the hook examples, or -1
        mask = inputs["attention_mask"]
        self.real_tokens += int(mask.sum())
        self.padded_tokens += int(mask.numel())
        if self.per_example:
            loss, outputs = example_mean_loss(model, inputs)
        else:
            loss, outputs = super().compute_loss(model, inputs, return_outputs=True, **kwargs)
        for hook in self.hooks:
            if getattr(hook, "in_batch", False) and anchors is not None and bool((anchors >= 0).any()):
                loss = loss + hook.batch_penalty(outputs.logits, mask, anchors).to(loss.device)
            else:  # a batch without an anchor example still gets the penalty, from a pass of its own
                loss = loss + hook.penalty(model).to(loss.device)
        return (loss, outputs) if return_outputs else loss


def example_mean_loss(model: torch.nn.Module, inputs: dict) -> tuple[torch.Tensor, object]:
    """Cross-entropy averaged over each example's answer tokens, then over the batch (train.loss_average =
    "example"). The usual token mean weighs an example by its length: a 12-token fact answer batched with a
    128-token rehearsal answer gets a tenth of the gradient it gets alone."""
    labels = inputs["labels"]
    outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
    logits = outputs.logits[:, :-1].float()
    target = labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE,
                                                  reduction="none")
    counts = (target != IGNORE).sum(dim=1)
    has = counts > 0
    if not has.any():  # every answer cut off by max_seq_len: nothing to learn from this batch (the mean would be NaN)
        return per_token.sum() * 0.0, outputs
    per_example = per_token.sum(dim=1)[has] / counts[has]
    return per_example.mean(), outputs


class _Progress(TrainerCallback):
    """Reports (step, max_steps, loss) to a function: the CLI's log, the UI's progress file."""

    def __init__(self, report: Callable[[dict], None]):
        self.report = report
        self.started = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        step, total = state.global_step, max(state.max_steps, 1)
        elapsed = time.time() - self.started
        self.report({"stage": "training", "step": step, "max_steps": total, "loss": (logs or {}).get("loss"),
                     "eta_s": round(elapsed / max(step, 1) * (total - step), 1)})


def batches_per_epoch(n_examples: int, cfg: TrainConfig) -> int:
    return -(-n_examples // cfg.batch_size)


def run_epochs(n_examples: int, cfg: TrainConfig) -> int:
    """train.epochs, raised until the run takes at least train.min_steps optimizer steps: a one-fact mix (two
    examples, one batch) would otherwise get 3 steps, the first at the warm-up's zero rate (measured: its loss
    stayed at 5.0)."""
    batches = batches_per_epoch(n_examples, cfg)
    return max(cfg.epochs, -(-cfg.min_steps // batches)) if batches else cfg.epochs


def planned_steps(n_examples: int, cfg: TrainConfig) -> int:
    """Optimizer steps a run takes: epochs × batches per epoch, capped at train.max_steps (0 = no cap)."""
    steps = run_epochs(n_examples, cfg) * batches_per_epoch(n_examples, cfg)
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def trainer_max_steps(n_examples: int, cfg: TrainConfig) -> int:
    """TrainingArguments.max_steps for a run: train.max_steps where it cuts the epochs short, else -1 (run them)."""
    steps = planned_steps(n_examples, cfg)
    return steps if steps < run_epochs(n_examples, cfg) * batches_per_epoch(n_examples, cfg) else -1


class _BarOnly(ProgressCallback):
    """transformers' tqdm bar (on stderr) without its per-log-step printing."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        pass


@dataclass
class TrainResult:
    model: torch.nn.Module  # the peft model (adapter attached)
    metrics: dict


def make_4bit_trainable_on_cpu(model: torch.nn.Module) -> int:
    """Undo bitsandbytes' CPU inference packing before training; returns how many layers were unpacked.

    On CPUs with AVX512-BF16, a bnb Linear4bit that runs in eval mode without grad (generating rehearsal answers,
    probing, chatting) repacks its weight in place into an inference-only layout (bf16 absmax). Afterwards
    matmul_4bit sends every input through gemv_4bit, which has no autograd kernel: torch warns "backprop through
    it ... may lead to silently incorrect behavior", the base layers pass no gradient back and training on that
    model learned nothing or diverged (measured here: loss 2 → 8 over 5 epochs, while the same data on a model
    that had not generated first went to 0.01). So: unpack, and switch the repacking off for this model."""
    try:
        import bitsandbytes as bnb
        from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse
    except ImportError:
        return 0
    n = 0
    for module in model.modules():
        if not isinstance(module, bnb.nn.Linear4bit):
            continue
        module.support_avx512bf16_for_cpu = False  # never repack while (or after) this model trains
        w = module.weight
        if getattr(getattr(w, "quant_state", None), "packing_format_for_cpu", False):
            w.data, w.quant_state = _convert_weight_packed_for_cpu_inverse(w.data, w.quant_state)
            n += 1
    if n:
        log.info("unpacked %d 4-bit layers from bitsandbytes' CPU inference layout before training", n)
    return n


def attach_adapter(model: torch.nn.Module, cfg: TrainConfig, previous: Path | None, quantized: bool):
    """Continue training the previous version's adapter, or start a fresh LoRA on the frozen base."""
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        make_4bit_trainable_on_cpu(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if previous is not None:
        return PeftModel.from_pretrained(model, str(previous), is_trainable=True)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lora_targets(model, cfg.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


MLP_BLOCKS = ("mlp", "feed_forward", "ffn")  # what Hugging Face causal LMs call a layer's feed-forward block


def lora_targets(model: torch.nn.Module, spec: str) -> str | list[str]:
    """peft target_modules for train.target_modules: "all-linear", "mlp" (the linear layers of every feed-forward
    block: e.g. gate_proj, up_proj and down_proj on Llama-family models) or a comma-separated list of names.

    "mlp" is resolved here because peft has no such option: its layer names differ by architecture, and a name can
    also occur outside the block (GPT-2's c_proj), so the result is the block's layer names where they are
    unambiguous, else their full paths. A model without such a block gets "all-linear" (logged)."""
    if spec != "mlp":
        return spec if spec == "all-linear" else [t.strip() for t in spec.split(",") if t.strip()]
    from transformers.pytorch_utils import Conv1D

    linear = {name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear | Conv1D)}
    inside = sorted(n for n in linear if set(n.split(".")[:-1]) & set(MLP_BLOCKS))
    if not inside:
        log.warning("train.target_modules = \"mlp\": no feed-forward block (%s) in this model; training all linear "
                    "layers", ", ".join(MLP_BLOCKS))
        return "all-linear"
    leaves = {n.rsplit(".", 1)[-1] for n in inside}
    if any(n.rsplit(".", 1)[-1] in leaves for n in linear.difference(inside)):
        return inside
    return sorted(leaves)


def train_adapter(model: torch.nn.Module, tokenizer, examples: list[Example], cfg: TrainConfig, work_dir: Path,
                  previous: Path | None = None, quantized: bool = True, hooks: Sequence[Hook] = (),
                  hook_examples: list[Example] | None = None, report: Callable[[dict], None] | None = None,
                  show_progress: bool = True) -> TrainResult:
    """Train one adapter on `examples` (already mixed). `hook_examples` feed hooks' before_training (EWC's
    Fisher, distillation's base distributions: the rehearsal and replay part of the mix); hooks need them."""
    if hooks and not hook_examples:  # never the training examples themselves: that anchors the new data to the base
        raise ValueError("hooks (EWC, distillation) need hook_examples: the rehearsal or replayed examples")
    torch.manual_seed(cfg.seed)
    data = [tokenize_example(tokenizer, e.as_chat(), cfg.max_seq_len) for e in examples]
    if in_batch := [h for h in hooks if getattr(h, "in_batch", False)]:
        position = {e: i for i, e in enumerate(hook_examples)}
        if set(position) <= set(examples):
            for d, e in zip(data, examples):
                d[ANCHOR] = position.get(e, -1)
        else:  # rehearsal answers that are no SFT targets (train.rehearsal_sft false) need a pass of their own
            log.info("distillation in its own pass: not every anchor example is a training example")
            for hook in in_batch:
                hook.in_batch = False
    data = [d for d in data if any(label != IGNORE for label in d["labels"])]
    if not data:
        raise ValueError("no training example has an assistant token to learn from")
    model = attach_adapter(model, cfg, previous, quantized)
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE, return_tensors="pt")

    if hooks:
        hook_data = [tokenize_example(tokenizer, e.as_chat(), cfg.max_seq_len) for e in hook_examples]
        for hook in hooks:  # in batches of the hook's own size (distillation: train.distill_batch_size), if it has one;
            # one by one for a hook that works in the training batch (its targets are looked up per example; its pass
            # for a batch without one then takes one example, whatever train.distill_batch_size says)
            size = 1 if getattr(hook, "in_batch", False) else getattr(hook, "batch_size", None) or cfg.batch_size
            hook.before_training(model, [collator(hook_data[i:i + size]) for i in range(0, len(hook_data), size)])

    on_gpu = torch.cuda.is_available()
    steps = planned_steps(len(data), cfg)
    max_steps = trainer_max_steps(len(data), cfg)
    capped = max_steps > 0
    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=run_epochs(len(data), cfg),
        max_steps=max_steps,
        learning_rate=cfg.learning_rate,
        # Warm up over the first 10 % of steps, then decay: a constant rate let longer runs diverge here.
        lr_scheduler_type="cosine",
        warmup_steps=max(1, int(0.1 * steps)),
        weight_decay=0.0,
        logging_steps=1,
        save_strategy="no",  # a run is short; crash safety comes from atomic version folders, not checkpoints
        report_to=[],
        seed=cfg.seed,
        data_seed=cfg.seed,
        # Random order, not "group_by_length": measured here, length grouping padded 52 % vs 21 % (bench_consolidate).
        train_sampling_strategy="random",
        remove_unused_columns=False,
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        disable_tqdm=not show_progress,
        dataloader_num_workers=0,
    )
    callbacks = [_Progress(report)] if report else []
    trainer = _HookedTrainer(model=model, args=args, train_dataset=data, data_collator=collator,
                             processing_class=tokenizer, callbacks=callbacks, hooks=hooks,
                             per_example=cfg.loss_average == "example")
    # With logging every step, transformers' own callbacks print every step's log dict to stdout (1368 lines for
    # 200 turns), which also broke `consolidate --json`. The loss goes to progress.json and the metrics instead.
    trainer.remove_callback(PrinterCallback)
    if show_progress:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_BarOnly())
    started = time.time()
    out = trainer.train()
    seconds = time.time() - started
    penalties = {}
    for hook in hooks:
        with torch.no_grad():  # the final penalty, so a run's metrics show whether a hook's strength mattered
            penalties[f"{hook.name}_penalty"] = round(float(hook.penalty(model)), 6)
        hook.after_training(model)

    real, padded = trainer.real_tokens, trainer.padded_tokens  # what the model actually processed
    metrics = {
        "train_loss": round(float(out.training_loss), 5),
        "final_loss": _last_loss(trainer),
        "loss_curve": [round(float(h["loss"]), 4) for h in trainer.state.log_history if "loss" in h],
        "steps": int(out.global_step),
        "examples": len(data),
        "epochs": (round(out.global_step / batches_per_epoch(len(data), cfg), 3) if capped
                   else run_epochs(len(data), cfg)),
        "capped_at_max_steps": capped,
        "tokens": real,
        "padded_tokens": padded,
        "padding_waste": round(1 - real / padded, 4) if padded else 0.0,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(real / seconds, 1) if seconds else None,
        **penalties,
    }
    return TrainResult(model, metrics)


def _last_loss(trainer: Trainer) -> float | None:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return round(float(losses[-1]), 5) if losses else None
