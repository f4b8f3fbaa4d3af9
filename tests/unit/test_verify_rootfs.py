"""The arm64 target's cache (verify.rootfs): where it lives, what names an entry, how an entry is
built once and replaced when its recipe changes. Nothing here runs debootstrap or qemu."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify import rootfs
from verify.rootfs import BuildError, Recipe


def test_the_cache_is_the_variable_else_under_xdg_cache_home_else_under_home() -> None:
    assert rootfs.cache_dir({rootfs.CACHE_ENV: "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")
    assert rootfs.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/upload-service/arm64")
    assert rootfs.cache_dir({}) == Path.home() / ".cache" / "upload-service" / "arm64"


def test_an_entry_is_named_by_its_kind_and_the_hash_of_its_recipe() -> None:
    recipe = rootfs.sdk_recipe({"boto3": "1.43.11"})
    assert recipe.key == rootfs.sdk_recipe({"boto3": "1.43.11"}).key
    assert len(recipe.key) == 16
    assert recipe.directory(Path("/c")) == Path(f"/c/boto3-{recipe.key}")


def test_a_changed_recipe_changes_the_key() -> None:
    keys = {
        rootfs.sdk_recipe({"boto3": "1.43.11"}).key,
        rootfs.sdk_recipe({"boto3": "1.43.12"}).key,
        rootfs.sdk_recipe({"boto3": "1.43.11", "botocore": "1.43.11"}).key,
        rootfs.rootfs_recipe().key,
        Recipe("rootfs", ("--arch=arm64", "bookworm")).key,
    }
    assert len(keys) == 5


def test_the_runtime_sdk_pins_come_from_the_requirements_files(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.0\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\nboto3==1.2.3\n")
    (tmp_path / "requirements-more.txt").write_text("botocore==1.2.4  # the SDK's core\n")
    assert rootfs.runtime_pins(tmp_path) == {"boto3": "1.2.3", "botocore": "1.2.4"}


def test_the_projects_own_requirements_pin_boto3() -> None:
    assert "boto3" in rootfs.runtime_pins()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"requirements.txt": "requests==2.0\n"}, "no boto3==VERSION"),
        ({"requirements.txt": "boto3==1.0\n", "requirements-x.txt": "boto3==1.1\n"}, "both"),
    ],
)
def test_missing_or_conflicting_pins_are_refused(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(BuildError, match=message):
        rootfs.runtime_pins(tmp_path)


def _build(calls: list[Path]):
    def build(staging: Path) -> None:
        calls.append(staging)
        (staging / "built").write_text("yes")

    return build


def test_an_entry_is_built_once_then_reused(tmp_path: Path) -> None:
    calls: list[Path] = []
    recipe = Recipe("rootfs", ("a",))
    first = rootfs.cached(recipe, tmp_path, _build(calls), progress=lambda line: None)
    again = rootfs.cached(recipe, tmp_path, _build(calls), progress=lambda line: None)
    assert first == again == recipe.directory(tmp_path)
    assert (first / "built").read_text() == "yes"
    assert len(calls) == 1
    assert calls[0] != first  # built elsewhere, then renamed into place


def test_an_interrupted_build_leaves_no_entry(tmp_path: Path) -> None:
    def interrupted(staging: Path) -> None:
        (staging / "half").write_text("")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rootfs.cached(Recipe("rootfs", ("a",)), tmp_path, interrupted, progress=lambda line: None)
    assert [p.name for p in tmp_path.iterdir()] == [".lock"]


def test_a_new_recipe_replaces_the_stale_entry_of_its_kind_only(tmp_path: Path) -> None:
    calls: list[Path] = []
    old = rootfs.cached(Recipe("rootfs", ("a",)), tmp_path, _build(calls), lambda line: None)
    sdk = rootfs.cached(Recipe("boto3", ("a",)), tmp_path, _build(calls), lambda line: None)
    leftover = tmp_path / ".rootfs-killed"  # a build that was killed
    leftover.mkdir()
    lines: list[str] = []
    new = rootfs.cached(Recipe("rootfs", ("b",)), tmp_path, _build(calls), lines.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".lock", sdk.name, new.name])
    assert not old.exists()
    assert lines == [f"Building {new} (once) ..."]


def test_a_missing_tool_is_named_in_one_line() -> None:
    with pytest.raises(BuildError, match=r"^no-such-tool-here is not installed: `make verify"):
        rootfs.require("no-such-tool-here")
