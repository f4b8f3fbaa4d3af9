"""Variants of the stack only the infrastructure tests synthesize (tests/conftest.py has the
shared ``synth`` factory and the other variants)."""

from __future__ import annotations

import pytest

from tests.conftest import Synthesized, SynthFactory

# As the CLI passes `-c sweepDeletesOrphans=true -c orphanGraceMinutes=15`: strings.
SWEEP_DELETES_CONTEXT = {"sweepDeletesOrphans": "true", "orphanGraceMinutes": "15"}
SWEEP_DELETES_GRACE_SECONDS = 15 * 60


@pytest.fixture(scope="session")
def sweep_deletes_stack(synth: SynthFactory) -> Synthesized:
    """The sweep deletes the orphans it finds, after a 15-minute grace period."""
    return synth("sweep-deletes", SWEEP_DELETES_CONTEXT)
