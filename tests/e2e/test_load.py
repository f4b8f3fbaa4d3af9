"""Concurrent load with nothing lost (tests/load.py), on a CI-sized run: 8 clients, 60 requests
mixing valid and invalid bodies, re-uploads and repeated Idempotency-Keys. Every 200 must be in
S3 and DynamoDB exactly as reported, and nothing else may exist under the run's product-id
prefix."""

from __future__ import annotations

from tests.load import Target, run_load


def test_concurrent_uploads_reconcile_exactly(emulator):
    report = run_load(Target.from_emulator(emulator), clients=8, uploads=60, seed=7)

    assert report.problems == [], "\n".join(report.problems)
    assert len(report.steps) == 60
    statuses = report.statuses
    assert statuses[200] >= 30, statuses  # the mix is mostly valid uploads
    assert statuses[400] >= 5, statuses
    assert set(statuses) <= {200, 400, 409}, statuses
