"""The deployed code asset imports with only what Lambda will have: the Python runtime (with its
boto3), the tasks asset and the dependencies layer.

The layer is built for arm64 / CPython 3.13, which this machine cannot load, so the same lock is
installed for this machine the same way (the lock has every file's hash), checked to hold the
same top-level packages as the layer, and the four handlers are imported in an isolated
interpreter whose only import roots are the standard library, the asset, that install and a
directory standing in for the runtime's boto3.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra import layer_lock

from .infra_helpers import asset_dir, layer_properties, resources_of_type

HANDLER_MODULES = ["tasks.validate", "tasks.store", "tasks.record", "tasks.compensate"]

# Runs in the isolated interpreter: import each handler, then report every non-stdlib module's
# file so the test can check where it came from.
IMPORT_PROBE = """
import importlib, json, sys
roots = json.loads(sys.argv[1])
sys.path[:0] = roots
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
files = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
print(json.dumps({n: f for n, f in files.items() if f and not f.startswith(sys.base_prefix)}))
"""


def _top_level_names(site: Path) -> set[str]:
    names = {p.name.removesuffix(".py") for p in site.iterdir() if p.name != "__pycache__"}
    return {n for n in names if not n.endswith(".dist-info") and n != "bin"}


@pytest.fixture(scope="module")
def host_dependencies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("host-layer") / "python"
    command = layer_lock.pip_install_command(layer_lock.LOCK_FILE, target, "--only-binary=:all:")
    subprocess.run(command, check=True)
    return target


@pytest.fixture(scope="module")
def runtime_boto3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages the Lambda Python runtime ships, linked from this environment."""
    runtime = tmp_path_factory.mktemp("runtime")
    for package in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six"):
        spec = importlib.util.find_spec(package)
        assert spec is not None, package
        assert spec.origin is not None, package
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    return runtime


def test_the_layer_holds_the_same_packages_as_the_requirements_install(
    default_stack, host_dependencies
):
    layer_site = asset_dir(default_stack, layer_properties(default_stack)["Content"]) / "python"
    assert _top_level_names(layer_site) == _top_level_names(host_dependencies)


def test_each_handler_imports_with_only_the_asset_the_layer_and_the_runtime(
    default_stack, host_dependencies, runtime_boto3
):
    functions = resources_of_type(default_stack.template_json, "AWS::Lambda::Function")
    [code] = {json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions.values()}
    code_dir = asset_dir(default_stack, json.loads(code))
    roots = [str(code_dir), str(host_dependencies), str(runtime_boto3)]
    # -I -S: no site-packages, no environment; -B: leave the asset as synthesized.
    probe = [sys.executable, "-I", "-S", "-B", "-c", IMPORT_PROBE]
    result = subprocess.run(
        [*probe, json.dumps(roots), json.dumps(HANDLER_MODULES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=code_dir,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert set(HANDLER_MODULES) <= set(loaded)
    outside = {
        name: file
        for name, file in loaded.items()
        if not any(file.startswith(root) for root in roots)
    }
    assert outside == {}
