"""Latency injection for simulators and the paper platform: fixed or a seeded distribution."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Latency:
    """Delay in milliseconds: ``fixed_ms`` plus, when ``jitter_ms`` > 0, a seeded log-normal part.

    A log-normal tail is what real broker round trips look like: most calls near the median,
    a few much slower. The seed makes a benchmark run repeatable.
    """

    fixed_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int = 1
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.fixed_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency must not be negative")
        self._rng = random.Random(self.seed)

    def sample_ms(self) -> float:
        if self.jitter_ms <= 0:
            return self.fixed_ms
        return self.fixed_ms + self.jitter_ms * self._rng.lognormvariate(0.0, 0.5)

    async def wait(self) -> None:
        delay = self.sample_ms()
        if delay > 0:
            await asyncio.sleep(delay / 1000.0)

    @classmethod
    def parse(cls, spec: str | float | int | None) -> Latency:
        """``50`` → fixed 50 ms; ``"50+20"`` → 50 ms plus a 20 ms-scale log-normal tail."""
        if spec is None:
            return cls()
        if isinstance(spec, (int, float)):
            return cls(fixed_ms=float(spec))
        fixed, _, jitter = str(spec).partition("+")
        return cls(fixed_ms=float(fixed or 0), jitter_ms=float(jitter or 0))
