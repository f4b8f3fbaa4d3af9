"""The service's contract: the facts every part of the project shares, in one place.

Standard library only (``tests/unit/test_contract.py`` proves it), so the CDK app (``infra/``),
local mode, the operators' CLI, the benchmark and the tests read these facts without loading the
Lambda runtime's libraries:

- :mod:`~tasks.contract.names`: environment variables, metric names, service and namespace,
  task names and the workflow's state ids;
- :mod:`~tasks.contract.errors`: the named errors and the one table of what a client sees for
  every outcome (task errors and the API edge's own answers alike);
- :mod:`~tasks.contract.limits`: sizes;
- :mod:`~tasks.contract.timing`: the retry policy and the SDK time budget;
- :mod:`~tasks.contract.keys`, :mod:`~tasks.contract.content_types`,
  :mod:`~tasks.contract.idempotency`: the S3 key rules, the content-type rules and the
  Idempotency-Key hashing.

The API these facts describe is written down in ``docs/api.md``.
"""
