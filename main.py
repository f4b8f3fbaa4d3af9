"""The CDK app: one stack, "UploadService", built from context flags (see infra/settings.py)."""

import os
import sys

# Node 20 is end-of-life, yet the pinned aws-cdk-lib and its jsii runtime (requirements.txt) run
# on it, and every test runs there: its 11-line banner on each `npx cdk` command says nothing
# more. Quieted for Node 20 only (the value names the major version); other versions still warn.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.app import build_app  # after the variable: jsii reads it on import
from infra.lambda_python import LambdaPythonError
from infra.settings import SettingsError

if __name__ == "__main__":
    try:
        build_app().synth()
    except (SettingsError, LambdaPythonError) as error:
        # A wrong flag or LAMBDA_PYTHON is an ordinary mistake: one line, no traceback.
        sys.exit(f"error: {error}")
