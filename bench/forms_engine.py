"""Engine steps per second over the standard forms, with realistic answers, on one core.

Run: .venv/bin/python bench/forms_engine.py [--seconds 5]
Target (issue 2): at least 20,000 steps/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from datetime import UTC, datetime

from forms_runtime.effects import Ask, Reject, Review, Submit
from forms_runtime.engine import start, step
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms
from forms_runtime.sample_answers import sample_answer

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def run(seconds: float, seed: int = 7) -> tuple[int, int, float]:
    forms = list(standard_forms().values())
    default_gazetteer()  # load outside the timed loop, as a running server has
    rng = random.Random(seed)
    steps = submitted = 0
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        form = rng.choice(forms)
        state, effects = start(form, rng.choice(("en", "af", "zu", "xh")))
        for _ in range(60):
            last = effects[-1] if effects else None
            if isinstance(last, Submit) or last is None:
                submitted += isinstance(last, Submit)
                break
            if not isinstance(last, Ask | Review):
                break
            answer = sample_answer(last, rng, rejected=isinstance(effects[0], Reject))
            inbound = dataclasses.replace(answer, received_at=NOW)
            state, effects = step(form, state, inbound)
            steps += 1
    return steps, submitted, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    steps, submitted, elapsed = run(args.seconds)
    print(
        f"forms engine: {steps / elapsed:,.0f} steps/s ({steps:,} steps, {submitted:,} forms submitted, {elapsed:.1f} s, one core)"
    )


if __name__ == "__main__":
    main()
