"""What ``make verify-arm64`` prints (verify.report): one aligned line per function, the reason
of a failure at the end of its line, and the summary."""

from __future__ import annotations

from verify.report import FunctionReport, function_lines, scenario_line, summary_line
from verify.sandbox import Call


def _report(**fields: object) -> FunctionReport:
    base: dict[str, object] = {
        "name": "TasksStoreFunction844AD34E",
        "handler": "tasks.store.handler",
        "init_seconds": 30.0,
        "calls": (Call("upload", 1.5, {}, None), Call("compensation", 0.25, {}, None)),
    }
    return FunctionReport(**{**base, **fields})  # type: ignore[arg-type]


def test_a_function_that_passed_names_its_handler_its_calls_and_its_seconds() -> None:
    [line] = function_lines([_report()])
    name, handler, rest = line.split(maxsplit=2)
    assert (name, handler) == ("TasksStoreFunction844AD34E", "tasks.store.handler")
    assert rest == "import + 2 calls (upload, compensation)  ok    31.8 s"


def test_a_call_that_failed_fails_its_function_with_the_reason_at_the_end() -> None:
    calls = (
        Call("upload", 1.0, {}, None),
        Call("compensation", 2.0, None, "TransientStorageError: Compensating failed."),
    )
    [line] = function_lines([_report(calls=calls)])
    assert " FAILED " in line
    assert line.endswith("   33.0 s  compensation: TransientStorageError: Compensating failed.")


def test_an_import_that_failed_and_a_function_never_called_fail() -> None:
    failed_import = _report(init_seconds=None, calls=(), start_failure="ModuleNotFoundError: x")
    never_called = _report(calls=())
    lines = function_lines([failed_import, never_called])
    assert "import failed" in lines[0]
    assert lines[0].endswith("init: ModuleNotFoundError: x")
    assert "import + 0 calls (none)" in lines[1]
    assert lines[1].endswith("not called: no scenario invokes it")


def test_the_columns_line_up() -> None:
    short = _report(name="Fn", handler="tasks.x.handler", calls=(Call("s", 1.0, {}, None),))
    lines = function_lines([_report(), short])
    assert lines[0].index("tasks.store.handler") == lines[1].index("tasks.x.handler")
    assert lines[0].index(" ok ") == lines[1].index(" ok ")


def test_the_summary_counts_functions_and_scenarios() -> None:
    target = "aarch64 Python 3.13.5 under qemu-aarch64-static"
    passed = summary_line([_report(), _report()], 5, 0, target, 151.26)
    assert passed == (
        f"verify-arm64 ok: 2 of 2 functions ok, 5 of 5 scenarios passed, on {target}, in 151.3 s"
    )
    failed = summary_line([_report(), _report(calls=())], 5, 1, target, 10.0)
    assert failed.startswith("verify-arm64 FAILED: 1 of 2 functions ok, 4 of 5 scenarios passed")


def test_a_failed_scenario_is_one_line() -> None:
    line = scenario_line("compensation", "versions left ['a', 'b'], not ['a']")
    assert line == "scenario compensation: FAILED: versions left ['a', 'b'], not ['a']"
