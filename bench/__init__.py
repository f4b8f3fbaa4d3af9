"""Performance benchmark (not part of the test suite): ``python -m bench`` / ``make bench``."""
