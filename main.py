"""The CDK app: one stack, "UploadService", built from context flags (see workflow/settings.py)."""

from workflow.app import build_app

if __name__ == "__main__":
    build_app().synth()
