"""``make verify-arm64``: the Lambda functions as they ship, run on their target (arm64, Python
3.13) under emulation, against local mode's emulated AWS."""
