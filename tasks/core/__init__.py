"""What the four task handlers share: limits, errors, models, S3 key rules, observability."""
