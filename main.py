"""The CDK app: one stack, "UploadService", built from context flags (see infra/settings.py)."""

from infra.app import build_app

if __name__ == "__main__":
    build_app().synth()
