"""The Lambda assets are reproducible and say what they hold: the layer is exactly the hashed lock,
installed for the Lambda platform; both asset hashes record whether byte code is in; a wrong
``LAMBDA_PYTHON`` stops synth and a machine without Python 3.13 gets one warning."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import bundling, lambda_python, layer_lock

from .infra_helpers import asset_dir, layer_properties

REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", re.MULTILINE)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_lambda_python() -> Iterator[None]:
    """``lambda_python()`` is cached per process: each test looks again, and leaves no trace."""
    lambda_python.lambda_python.cache_clear()
    yield
    lambda_python.lambda_python.cache_clear()


def test_the_lock_pins_every_requirement_at_its_version_and_nothing_the_runtime_ships():
    locked = layer_lock.locked_distributions()
    wanted = REQUIREMENT.findall(layer_lock.REQUIREMENTS_FILE.read_text())
    assert wanted, "tasks/requirements.txt pins nothing"
    for name, version in wanted:
        assert locked.get(layer_lock.canonical(name)) == version, f"{name}: run `make lock`"
    assert not set(locked) & layer_lock.RUNTIME_PROVIDED_DISTRIBUTIONS
    # What Powertools' tracer extra pulls in is pinned too, not left to the resolver.
    assert {"aws-xray-sdk", "wrapt", "typing-extensions"} <= set(locked)


def test_every_locked_distribution_has_hashes_and_the_lock_names_its_command():
    text = layer_lock.LOCK_FILE.read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert len(entries) == len(layer_lock.locked_distributions())
    for entry in entries:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), entry.splitlines()[0]
    assert f"#    {layer_lock.REGENERATE_COMMAND}\n" in text


def test_the_layer_holds_exactly_the_locked_distributions(default_stack):
    layer_site = asset_dir(default_stack, layer_properties(default_stack)["Content"]) / "python"
    assert layer_lock.installed_distributions(layer_site) == layer_lock.locked_distributions()


def test_the_layer_hash_follows_the_lock_and_the_byte_code(tmp_path, monkeypatch):
    lock = tmp_path / "requirements.lock"
    lock.write_text("msgspec==0.22.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    monkeypatch.setattr(bundling, "LOCK_FILE", lock)
    monkeypatch.setattr(bundling, "bytecode_marker", lambda: "source-only")
    first = bundling.dependencies_hash()
    assert bundling.dependencies_hash() == first
    monkeypatch.setenv("HOME", str(tmp_path))
    assert bundling.dependencies_hash() == first
    monkeypatch.setattr(bundling, "bytecode_marker", lambda: "bytecode:cpython-3.13")
    assert bundling.dependencies_hash() != first
    monkeypatch.setattr(bundling, "bytecode_marker", lambda: "source-only")
    lock.write_text(lock.read_text().replace("0" * 64, "1" * 64))
    assert bundling.dependencies_hash() != first


def test_the_code_hash_follows_the_task_files_and_the_byte_code(tmp_path, monkeypatch):
    tasks = tmp_path / "tasks"
    shutil.copytree(bundling.TASKS_DIR, tasks, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(bundling, "TASKS_DIR", tasks)
    monkeypatch.setattr(bundling, "bytecode_marker", lambda: "source-only")
    first = bundling.tasks_hash()
    (tasks / "__pycache__").mkdir()
    (tasks / "__pycache__" / "validate.cpython-311.pyc").write_bytes(b"not shipped")
    (tasks / "requirements.lock").write_text("not in the code asset\n")
    assert bundling.tasks_hash() == first
    monkeypatch.setattr(bundling, "bytecode_marker", lambda: "bytecode:cpython-3.13")
    assert bundling.tasks_hash() != first
    monkeypatch.setattr(bundling, "bytecode_marker", lambda: "source-only")
    (tasks / "validate.py").write_text((tasks / "validate.py").read_text() + "\n# changed\n")
    assert bundling.tasks_hash() != first


def _wheel(directory: Path, name: str, platform: str) -> Path:
    """A minimal valid wheel of ``name`` 1.0 for CPython 3.13 on ``platform``."""
    path = directory / f"{name}-1.0-cp313-cp313-{platform}.whl"
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp313-cp313-{platform}\n"
        ).encode(),
    }
    record = [
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()}"
        f",{len(d)}"
        for n, d in files.items()
    ]
    with zipfile.ZipFile(path, "w") as wheel:
        for file_name, data in files.items():
            wheel.writestr(file_name, data)
        wheel.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return path


def _install_offline(
    tmp_path: Path, wheels: dict[str, str], *, wrong_hashes: bool = False
) -> subprocess.CompletedProcess[str]:
    """The layer's pip command over a lock of fake wheels (name -> platform tag), no index."""
    directory = tmp_path / "wheels"
    directory.mkdir()
    lock = tmp_path / "requirements.lock"
    for name, platform in wheels.items():
        digest = hashlib.sha256(_wheel(directory, name, platform).read_bytes()).hexdigest()
        digest = "0" * 64 if wrong_hashes else digest
        with lock.open("a") as file:
            file.write(f"{name}==1.0 \\\n    --hash=sha256:{digest}\n")
    command = layer_lock.pip_install_command(
        lock, tmp_path / "python", *layer_lock.PIP_PLATFORM_ARGS
    )
    offline = [*command, "--no-index", "--find-links", str(directory)]
    return subprocess.run(offline, capture_output=True, text=True, check=False)


def test_the_layer_installs_every_manylinux_the_runtime_can_load(tmp_path):
    wheels = {
        "oldpkg": "manylinux2014_aarch64",
        "newerpkg": "manylinux_2_28_aarch64",  # a release with only newer wheels than 2014
        "newestpkg": "manylinux_2_34_aarch64",  # the runtime's glibc
    }
    result = _install_offline(tmp_path, wheels)
    assert result.returncode == 0, result.stderr
    installed = layer_lock.installed_distributions(tmp_path / "python")
    assert installed == dict.fromkeys(wheels, "1.0")


def test_the_layer_refuses_a_wheel_too_new_for_the_runtime(tmp_path):
    result = _install_offline(tmp_path, {"futurepkg": "manylinux_2_35_aarch64"})
    assert result.returncode != 0
    assert "No matching distribution found for futurepkg" in result.stderr


def test_a_wheel_whose_hash_is_not_in_the_lock_is_refused(tmp_path):
    result = _install_offline(tmp_path, {"futurepkg": "manylinux2014_aarch64"}, wrong_hashes=True)
    assert result.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr
    assert layer_lock.installed_distributions(tmp_path / "python") == {}


@pytest.mark.usefixtures("fresh_lambda_python")
@pytest.mark.parametrize(
    ("value", "reason"),
    [("/nonexistent/python3.13", "does not run"), (sys.executable, "is Python 3.")],
)
def test_a_wrong_lambda_python_stops_with_its_name(monkeypatch, value, reason):
    monkeypatch.setenv(lambda_python.LAMBDA_PYTHON_ENV, value)
    with pytest.raises(lambda_python.LambdaPythonError) as raised:
        lambda_python.lambda_python()
    assert str(raised.value).startswith(f"LAMBDA_PYTHON={value} {reason}")
    assert "must name a Python 3.13" in str(raised.value)


@pytest.mark.usefixtures("fresh_lambda_python")
def test_no_python_3_13_gives_source_only_assets_and_one_warning(monkeypatch, capsys):
    monkeypatch.delenv(lambda_python.LAMBDA_PYTHON_ENV, raising=False)
    monkeypatch.setattr(lambda_python, "_candidates", lambda: [sys.executable])
    assert lambda_python.lambda_python() is None
    assert lambda_python.bytecode_marker() == "source-only"
    assert lambda_python.compile_bytecode(Path("unused")) is False
    assert capsys.readouterr().err == lambda_python.SOURCE_ONLY_WARNING + "\n"


def test_synth_with_a_wrong_lambda_python_ends_in_one_line_without_banner(tmp_path):
    environment = {**os.environ, lambda_python.LAMBDA_PYTHON_ENV: "/nonexistent/python3.13"}
    environment["CDK_OUTDIR"] = str(tmp_path)
    # main.py itself quiets Node 20's end-of-life banner, as `npx cdk` runs it from a shell.
    environment.pop("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", None)
    result = subprocess.run(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: LAMBDA_PYTHON=/nonexistent/python3.13 does not run")
    assert "Traceback" not in result.stderr
    assert "end-of-life" not in result.stderr
    assert list(tmp_path.iterdir()) == []
