"""Small helpers shared by the benchmark scripts (measurement only; product logic lives in the package)."""
from __future__ import annotations

import time


class Timed:
    """Wrap a bound method on a live object: calls go through unchanged, durations (s) land in `times`."""

    def __init__(self, obj: object, name: str):
        self.obj, self.name, self.fn, self.times = obj, name, getattr(obj, name), []
        setattr(obj, name, self)

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - t)

    def restore(self) -> None:
        setattr(self.obj, self.name, self.fn)
