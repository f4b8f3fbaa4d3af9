"""CDK side of the upload service: one construct per concern, composed in infra/stack.py."""
