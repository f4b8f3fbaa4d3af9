"""The CDK app: one stack, "UploadService", built from context flags (see infra/settings.py)."""

import sys

from infra.app import build_app
from infra.lambda_python import LambdaPythonError
from infra.settings import SettingsError

if __name__ == "__main__":
    try:
        build_app().synth()
    except (SettingsError, LambdaPythonError) as error:
        # A wrong flag or LAMBDA_PYTHON is an ordinary mistake: one line, no traceback.
        sys.exit(f"error: {error}")
