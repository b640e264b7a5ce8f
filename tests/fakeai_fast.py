"""FakeAI's server with its simulated clock sped up.

A FakeAI finetuning job walks through its states in real time (1 s validating, 1 s
queued, 30 s running); the tests need only the order of those states and the events,
so every wait of FakeAI's service runs ``FAKEAI_CLOCK_SPEED`` times faster (default 20:
a job ends in about 1.6 s). Run as FakeAI's own command line:
``python tests/fakeai_fast.py server --host 127.0.0.1 --port N``.
"""

from __future__ import annotations

import asyncio
import os
import sys

import fakeai.fakeai_service as service

SPEED = float(os.environ.get("FAKEAI_CLOCK_SPEED", "20"))


class _FastClock:
    """``asyncio`` as FakeAI's service module sees it, with ``sleep`` shortened."""

    def __getattr__(self, name: str):
        return getattr(asyncio, name)

    @staticmethod
    def sleep(delay: float, *args, **kwargs):
        return asyncio.sleep(delay / SPEED, *args, **kwargs)


service.asyncio = _FastClock()

if __name__ == "__main__":
    from fakeai.cli import main

    sys.exit(main())
