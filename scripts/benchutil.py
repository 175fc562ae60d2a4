"""Small helpers shared by the benchmark scripts (measurement only; product logic lives in the package)."""
from __future__ import annotations

import functools
import resource
import time


class Timed:
    """Wrap a function or method attribute of a live module, class or object: calls go through unchanged, their
    (start, end) times land in `calls`; `on_call(args, kwargs)` / `on_return(result)` run around each call. The
    wrapper is a plain function, so set on a class it still binds as a method. `restore()` undoes it."""

    def __init__(self, owner: object, name: str, on_call=None, on_return=None):
        self.owner, self.name = owner, name
        self._own = vars(owner).get(name) if hasattr(owner, "__dict__") and name in vars(owner) else None
        fn = getattr(owner, name)
        self.calls: list[tuple[float, float]] = []

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if on_call:
                on_call(args, kwargs)
            t = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            finally:
                self.calls.append((t, time.perf_counter()))
            if on_return:
                on_return(result)
            return result

        setattr(owner, name, wrapper)

    @property
    def times(self) -> list[float]:
        """Duration of each call in seconds."""
        return [b - a for a, b in self.calls]

    @property
    def seconds(self) -> float:
        return sum(self.times)

    def restore(self) -> None:
        if self._own is not None:
            setattr(self.owner, self.name, self._own)
        else:
            delattr(self.owner, self.name)  # back to the class's (or base class's) own attribute


def rss_status() -> dict:
    """VmRSS / VmHWM of this process in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so a later VmHWM is the peak of what ran in between."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return r.ru_utime + r.ru_stime


def instrument_trainer() -> dict:
    """Time transformers.Trainer.train (wall and process CPU) and every Trainer.training_step (forward + backward
    of one batch, with its padded and real token counts). Both paths inherit these methods, so the same wrapper
    measures both; trainer.train minus the steps is the loop around them (data loading, optimizer, logging,
    callbacks)."""
    from transformers import Trainer

    rec: dict = {"steps": []}

    def train_start(a, k) -> None:
        targs = a[0].args
        rec["settings"] = {"train_sampling_strategy": str(getattr(targs, "train_sampling_strategy", "?")),
                           "lr_scheduler_type": str(getattr(targs.lr_scheduler_type, "value", targs.lr_scheduler_type)),
                           "logging_steps": targs.logging_steps}
        rec["cpu0"] = cpu_seconds()

    def train_end(result) -> None:
        rec["train_cpu_s"] = cpu_seconds() - rec.pop("cpu0")

    def step_start(a, k) -> None:
        inputs = a[2] if len(a) > 2 else k["inputs"]
        mask = inputs["attention_mask"]
        rec["steps"].append([int(mask.numel()), int(mask.sum()), int(mask.shape[-1])])

    rec["train"] = Timed(Trainer, "train", on_call=train_start, on_return=train_end)
    rec["step"] = Timed(Trainer, "training_step", on_call=step_start)
    return rec


def trainer_report(rec: dict) -> dict:
    """JSON-ready numbers from instrument_trainer's record."""
    steps = [[p, r, b - a, n] for (p, r, n), (a, b) in zip(rec["steps"], rec["step"].calls)]
    return {"settings": rec["settings"], "train_wall_s": rec["train"].seconds, "train_cpu_s": rec["train_cpu_s"],
            "steps_s": sum(x[2] for x in steps), "steps": steps}
