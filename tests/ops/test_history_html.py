"""``upload-ops history --html``: the page built from hand-made histories (what each state shows,
the timeline to scale, escaping, nothing to load), the layout, the graph against the definition
local mode runs, and the pages of real executions rendered by headless Chromium."""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from local.emulator import Emulator
from ops import history
from ops.cli import app
from ops.graph_layout import NODE_HEIGHT, NODE_WIDTH, layout
from ops.html_page import page
from ops.html_timeline import MIN_BAR, tick_step
from ops.logs import parse_history_record, parse_task_record
from ops.workflow_graph import UPLOAD_WORKFLOW
from tests.ops import builders as b
from tests.ops.builders import RID, T0

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # The browser's own background requests fail at once: no network, nothing to wait for.
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
SUCCESS_PATH = ["Validate", "Store", "DiscardFileContent", "AlreadyUploaded", "Record", "Uploaded"]
COMPENSATION_PATH = ["RecordFailed", "Compensate", "Compensated"]
TRANSIENT = ("TransientStorageError", b.TRANSIENT_CAUSE)


# -- reading a page ---------------------------------------------------------------------------
@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _Parser(HTMLParser):
    VOID = frozenset({"meta", "br", "img", "link", "input", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        if self._open:
            self._open[-1].children.append(element)
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


def parse(document: str) -> list[Element]:
    parser = _Parser()
    parser.feed(document)
    return parser.elements


def select(elements: list[Element], tag: str, cls: str | None = None) -> list[Element]:
    return [e for e in elements if e.tag == tag and (cls is None or cls in e.classes)]


def states(elements: list[Element]) -> dict[str, Element]:
    return {e.attrs["data-state"]: e for e in select(elements, "g", "state")}


def outcomes(elements: list[Element]) -> dict[str, str]:
    return {name: e.attrs["data-outcome"] for name, e in states(elements).items()}


def transitions(elements: list[Element]) -> dict[tuple[str, str], set[str]]:
    return {
        (e.attrs["data-source"], e.attrs["data-target"]): e.classes - {"transition"}
        for e in select(elements, "path", "transition")
        if "data-source" in e.attrs  # not the legend's samples
    }


def log_rows(elements: list[Element]) -> list[list[str]]:
    """The cells of each task log line (the browser adds a ``<tbody>``; the source has none)."""
    (section,) = [e for e in elements if e.tag == "section" and e.attrs.get("id") == "logs"]
    rows, pending = [], list(section.children)
    while pending:
        element = pending.pop(0)
        if element.tag == "tr" and all(c.tag == "td" for c in element.children):
            rows.append([cell.text for cell in element.children])
        pending.extend(element.children)
    return rows


def bars(elements: list[Element], cls: str = "bar") -> list[Element]:
    return [e for e in select(elements, "rect", cls) if "execution" not in e.classes]


def assert_to_scale(elements: list[Element]) -> float:
    """Every bar and attempt is as wide as its duration at the timeline's scale."""
    scale = float(select(elements, "svg", "timeline")[0].attrs["data-px-per-ms"])
    measured = [*bars(elements), *bars(elements, "attempt")]
    assert measured
    for rect in measured:
        expected = max(int(rect.attrs["data-duration-ms"]) * scale, MIN_BAR)
        assert float(rect.attrs["width"]) == pytest.approx(expected, abs=0.006), rect.attrs
    return scale


def assert_loads_nothing(document: str) -> None:
    """No element that fetches, no attribute naming a resource, nothing in the CSS to load,
    and a policy that forbids loading anything anyway."""
    elements = parse(document)
    fetching = {"script", "link", "img", "iframe", "object", "embed", "audio", "video", "source"}
    assert [e.tag for e in elements if e.tag in fetching] == []
    resource_attributes = {"src", "href", "srcset", "action", "poster", "data", "xlink:href"}
    assert [e.attrs for e in elements if resource_attributes & set(e.attrs)] == []
    for element in elements:
        for name, value in element.attrs.items():
            if "url(" in value:
                assert value.startswith("url(#"), (name, value)  # a marker of this page
    style = "".join(e.text for e in select(elements, "style"))
    assert "url(" not in style
    assert "@import" not in style
    policy = [e.attrs["content"] for e in select(elements, "meta") if "http-equiv" in e.attrs]
    assert policy == ["default-src 'none'; style-src 'unsafe-inline'"]


# -- hand-made histories ----------------------------------------------------------------------
def succeeded(retries: int = 0) -> b.Run:
    run = b.Run().task("Validate", 10).task("Store", 50).passed("DiscardFileContent")
    run.choice("AlreadyUploaded").task("Record", 20, failures=(TRANSIENT,) * retries)
    return run.succeed()


def compensated() -> b.Run:
    run = b.Run().task("Validate", 10).task("Store", 50).passed("DiscardFileContent")
    run.choice("AlreadyUploaded").task("Record", 20, failures=(TRANSIENT, TRANSIENT), ok=False)
    run.passed("RecordFailed").task("Compensate", 30).choice("Compensated")
    return run.fail_state("UploadFailed", "InternalError", b.INTERNAL_CAUSE)


def timeline_of(run: b.Run, *log_records: dict[str, Any]) -> history.Timeline:
    events = [e for r in run.records if (e := parse_history_record(r)) is not None]
    lines = [
        line
        for record in log_records
        if (line := parse_task_record(record, log_group="g", task="Record", request_id=RID))
    ]
    return history.build_timeline(events, RID, lines)


def test_a_succeeded_upload() -> None:
    document = page(timeline_of(succeeded()))
    elements = parse(document)
    shown = outcomes(elements)
    assert {name: shown[name] for name in SUCCESS_PATH} == dict.fromkeys(SUCCESS_PATH, "succeeded")
    assert {o for name, o in shown.items() if name not in SUCCESS_PATH} == {"unvisited"}
    steps = transitions(elements)
    assert steps[("Validate", "Store")] == {"taken"}
    assert steps[("Record", "Uploaded")] == {"taken"}
    assert steps[("Record", "RecordFailed")] == {"idle"}
    assert sum("taken" in kinds for kinds in steps.values()) == len(SUCCESS_PATH) - 1
    assert [e.text for e in select(elements, "code") if e.attrs.get("id") == "request-id"] == [RID]
    header = select(elements, "header")[0]
    assert "HTTP 200" in header.text
    assert "99 ms" in header.text  # from ExecutionStarted to ExecutionSucceeded
    assert b.arn(RID) in header.text
    assert "Compensation" not in header.text
    assert [e.attrs["data-state"] for e in bars(elements)] == SUCCESS_PATH
    assert_to_scale(elements)
    assert_loads_nothing(document)


def test_a_retry_is_amber_with_its_attempts() -> None:
    elements = parse(page(timeline_of(succeeded(retries=1))))
    record = states(elements)["Record"]
    assert (record.attrs["data-outcome"], record.attrs["data-attempts"]) == ("retried", "2")
    assert "2 attempts" in record.text
    assert outcomes(elements)["Store"] == "succeeded"
    attempts = [a for a in bars(elements, "attempt") if a.attrs["data-state"] == "Record"]
    assert [a.classes - {"attempt"} for a in attempts] == [{"failed"}, {"ok"}]
    first, second = (int(a.attrs["data-start-ms"]) for a in attempts)
    assert second > first + int(attempts[0].attrs["data-duration-ms"])  # the retry's wait
    assert_to_scale(elements)


def test_a_compensation_is_marked() -> None:
    document = page(timeline_of(compensated()))
    elements = parse(document)
    shown = outcomes(elements)
    assert [shown[name] for name in SUCCESS_PATH[:4]] == ["succeeded"] * 4
    assert (shown["Record"], states(elements)["Record"].attrs["data-attempts"]) == ("failed", "2")
    assert [shown[name] for name in COMPENSATION_PATH] == ["compensation"] * 3
    assert (shown["UploadFailed"], shown["Uploaded"], shown["ReportOrphan"]) == (
        "failed",
        "unvisited",
        "unvisited",
    )
    assert "role-compensation" in states(elements)["StoreFailed"].classes  # unvisited, still marked
    steps = transitions(elements)
    assert steps[("Record", "RecordFailed")] == {"compensation"}
    assert steps[("Compensated", "UploadFailed")] == {"compensation"}
    assert steps[("Store", "DiscardFileContent")] == {"taken"}
    header = select(elements, "header")[0]
    assert "HTTP 500 InternalError" in header.text
    assert "Compensation ran" in header.text
    record = [a.classes for a in bars(elements, "attempt") if a.attrs["data-state"] == "Record"]
    assert record == [{"attempt", "failed"}] * 2
    assert_to_scale(elements)
    assert_loads_nothing(document)


def test_everything_from_the_logs_is_escaped() -> None:
    script = '<script>alert("x")</script>'
    cell = "</td><img src=x onerror=alert(1)>"
    run = b.Run().task("Validate", 5, failures=(("<b>Bold</b>", cell),), ok=False)
    run.fail_state("Rejected", "<b>Bold</b>", f"{cell}{script}")
    lines = [
        b.task_line(RID, "validate", f"Request {script}", T0 + 5, productId=cell),
        b.task_line(RID, "validate", "Failed & <i>why</i>", T0 + 6, "ERROR", detail=script),
    ]
    document = page(timeline_of(run, *lines))
    elements = parse(document)
    for markup in ("<script", "<img", "<b>", "<i>", "</td><img"):
        assert markup not in document
    rows = log_rows(elements)
    assert [row[4] for row in rows] == [f"Request {script}", "Failed & <i>why</i>"]
    assert json.loads(rows[0][5]) == {"productId": cell}
    header = select(elements, "header")[0].text
    assert "<b>Bold</b>" in header
    assert f"{cell}{script}" in header
    assert "Validate (Task): failed, <b>Bold</b>" in states(elements)["Validate"].text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in document
    assert_loads_nothing(document)


def test_a_state_and_step_the_graph_lacks_are_drawn() -> None:
    run = b.Run().task("Validate", 10).task("Store", 50).passed("Inspect").task("Record", 20)
    elements = parse(page(timeline_of(run.succeed())))
    assert outcomes(elements)["Inspect"] == "succeeded"
    assert "role-unknown" in states(elements)["Inspect"].classes
    steps = transitions(elements)
    assert steps[("Store", "Inspect")] == {"observed"}
    assert steps[("Inspect", "Record")] == {"observed"}
    assert steps[("Store", "DiscardFileContent")] == {"idle"}


def test_a_timed_out_execution_leaves_its_state_open() -> None:
    elements = parse(page(timeline_of(b.timed_out())))
    assert outcomes(elements)["Store"] == "failed"
    store = [r for r in bars(elements) if r.attrs["data-state"] == "Store"]
    assert store[0].classes == {"bar", "failed", "open"}
    assert int(store[0].attrs["data-duration-ms"]) > 24_000  # until the execution timed out
    assert "HTTP 504" in select(elements, "header")[0].text
    assert_to_scale(elements)


def test_a_request_known_from_its_task_logs_only() -> None:
    record = b.task_line(RID, "validate", "Request rejected", T0)
    line = parse_task_record(record, log_group="g", task="Validate", request_id=RID)
    assert line is not None
    elements = parse(page(history.build_timeline([], RID, [line])))
    assert set(outcomes(elements).values()) == {"unvisited"}
    assert "unknown" in select(elements, "header")[0].text
    assert [row[4] for row in log_rows(elements)] == ["Request rejected"]


# -- layout -----------------------------------------------------------------------------------
def _crosses(points: list[tuple[float, float]], box: tuple[float, float]) -> bool:
    """Does an orthogonal path run through the inside of a node's box?"""
    left, top = box
    for (x1, y1), (x2, y2) in pairwise(points):
        xs, ys = sorted((x1, x2)), sorted((y1, y2))
        if xs[1] > left and xs[0] < left + NODE_WIDTH and ys[1] > top and ys[0] < top + NODE_HEIGHT:
            return True
    return False


@pytest.mark.parametrize(
    "extra",
    [[], [("Compensate", "Validate"), ("Uploaded", "Record")]],
    ids=["upload workflow", "with edges back"],
)
def test_layout_puts_no_edge_through_a_node(extra: list[tuple[str, str]]) -> None:
    nodes = [s.name for s in UPLOAD_WORKFLOW.states]
    edges = [(t.source, t.target) for t in UPLOAD_WORKFLOW.transitions] + extra
    placed = layout(nodes, edges)
    assert len({(box.column, box.row) for box in placed.boxes.values()}) == len(nodes)
    for edge in edges[: len(UPLOAD_WORKFLOW.transitions)]:
        assert placed.boxes[edge[1]].column > placed.boxes[edge[0]].column
    left, top, width, height = placed.view_box
    for (source, target), points in placed.paths.items():
        assert points[0] == placed.boxes[source].right
        assert points[-1] == placed.boxes[target].left
        for x, y in points:
            assert left <= x <= left + width
            assert top <= y <= top + height
        for name, box in placed.boxes.items():
            if name not in (source, target):
                assert not _crosses(points, (box.x, box.y)), (source, target, name)
    assert [placed.boxes[n].row for n in SUCCESS_PATH] == [0] * len(SUCCESS_PATH)
    assert layout(nodes, edges) == placed  # deterministic


@pytest.mark.parametrize(
    ("span", "step"), [(0, 1), (9, 2), (97, 20), (158, 20), (2615, 500), (25_000, 5000)]
)
def test_tick_step(span: int, step: int) -> None:
    assert tick_step(span) == step


# -- against local mode -----------------------------------------------------------------------
def _definition_graph(definition: dict[str, Any]) -> tuple[dict[str, str], set[tuple[str, str]]]:
    types = {name: str(state["Type"]) for name, state in definition["States"].items()}
    edges = set()
    for name, state in definition["States"].items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
        edges |= {(name, t) for t in targets if t}
    return types, edges


def test_the_graph_is_the_definition_local_mode_runs(emulator: Emulator) -> None:
    definitions = [json.loads(m.definition) for m in emulator.state_machines]
    (definition,) = [d for d in definitions if d["StartAt"] == "Validate"]
    types, edges = _definition_graph(definition)
    assert types == {s.name: s.type for s in UPLOAD_WORKFLOW.states}
    assert edges == {(t.source, t.target) for t in UPLOAD_WORKFLOW.transitions}


@dataclass(frozen=True)
class RealPages:
    succeeded: str  # request ids
    compensated: str
    directory: Path


@pytest.fixture(scope="module")
def real_pages(
    emulator: Emulator, uploads: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> RealPages:
    """The pages of a success and a compensation through local mode, each written by the CLI."""
    directory = tmp_path_factory.mktemp("history-html")
    pages = RealPages(uploads["ok"], uploads["compensated"], directory)
    for request_id in (pages.succeeded, pages.compensated):
        target = directory / f"{request_id}.html"
        result = _cli(emulator, "history", request_id, "--html", str(target))
        assert result.output == f"Wrote {target}\n"
    return pages


def _cli(emulator: Emulator, *args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--endpoint-url", emulator.aws_endpoint])
    assert result.exit_code == 0, result.output
    return result


def chromium(directory: Path, target: Path, *options: str) -> str:
    """Run headless Chromium on ``target`` with ``options`` (a fresh profile each time);
    return what it printed (the DOM, with ``--dump-dom``)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=directory)
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *options]
    result = subprocess.run(
        [*command, target.as_uri()], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def page_requests(net_log: Path) -> list[str]:
    """The URLs a page asked for, from Chromium's NetLog: requests with a document's origin as
    initiator (Chromium's own background requests have none)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start]
    return [p["url"] for p in starts if "url" in p and p.get("initiator") != "not an origin"]


def _model(emulator: Emulator, request_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_cli(emulator, "history", request_id, "--json").stdout)
    return document


def _assert_as_json_says(elements: list[Element], model: dict[str, Any]) -> None:
    """The bars are the states of ``upload-ops history --json``, as long as it says, and the
    log lines its task logs."""
    logs = [row[4] for row in log_rows(elements)]
    assert logs == [line["message"] for line in model["taskLogs"]]
    assert len(logs) >= 3
    shown = [(r.attrs["data-state"], int(r.attrs["data-duration-ms"])) for r in bars(elements)]
    assert [name for name, _ in shown] == [s["name"] for s in model["states"]]
    for (_, duration), state in zip(shown, model["states"], strict=True):
        if state["durationMs"] is not None:
            assert duration == state["durationMs"]
    assert_to_scale(elements)


def test_a_real_success_in_chromium(emulator: Emulator, real_pages: RealPages) -> None:
    target = real_pages.directory / f"{real_pages.succeeded}.html"
    net_log = real_pages.directory / "success-net.json"
    dom = chromium(real_pages.directory, target, "--dump-dom", f"--log-net-log={net_log}")
    elements = parse(dom)
    assert [e.text for e in select(elements, "code") if e.attrs.get("id") == "request-id"] == [
        real_pages.succeeded
    ]
    shown = outcomes(elements)
    assert [shown[name] for name in SUCCESS_PATH] == ["succeeded"] * len(SUCCESS_PATH)
    assert shown["Compensate"] == "unvisited"
    assert "HTTP 200" in select(elements, "header")[0].text
    _assert_as_json_says(elements, _model(emulator, real_pages.succeeded))
    assert page_requests(net_log) == []


def test_a_real_compensation_in_chromium(emulator: Emulator, real_pages: RealPages) -> None:
    target = real_pages.directory / f"{real_pages.compensated}.html"
    net_log, screenshot = real_pages.directory / "net.json", real_pages.directory / "page.png"
    dom = chromium(
        real_pages.directory,
        target,
        "--dump-dom",
        f"--screenshot={screenshot}",
        "--window-size=1400,1000",
        f"--log-net-log={net_log}",
    )
    elements = parse(dom)
    shown = outcomes(elements)
    assert (shown["Record"], shown["UploadFailed"]) == ("failed", "failed")
    assert [shown[name] for name in COMPENSATION_PATH] == ["compensation"] * 3
    compensate = states(elements)["Compensate"]
    assert {"compensation", "role-compensation"} <= compensate.classes
    assert states(elements)["Record"].attrs["data-attempts"] == "2"
    assert transitions(elements)[("Record", "RecordFailed")] == {"compensation"}
    header = select(elements, "header")[0].text
    assert "HTTP 500 InternalError" in header
    assert "Compensation ran" in header
    model = _model(emulator, real_pages.compensated)
    _assert_as_json_says(elements, model)
    widths = {r.attrs["data-state"]: float(r.attrs["width"]) for r in bars(elements)}
    durations = {s["name"]: s["durationMs"] for s in model["states"]}
    assert (widths["Record"] > widths["Compensate"]) == (
        durations["Record"] > durations["Compensate"]
    )
    assert page_requests(net_log) == []
    assert_png(screenshot.read_bytes(), 1400, 1000)


def test_the_request_check_sees_a_request(real_pages: RealPages) -> None:
    """The NetLog check above can fail: a page that loads an image is caught."""
    target = real_pages.directory / "loads.html"
    target.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png">')
    net_log = real_pages.directory / "loads-net.json"
    chromium(real_pages.directory, target, "--dump-dom", f"--log-net-log={net_log}")
    assert page_requests(net_log) == ["http://127.0.0.1:9/x.png"]


def assert_png(data: bytes, width: int, height: int) -> None:
    """A whole PNG (every chunk's CRC right, its pixels inflating to the right size) of that
    size, and far from blank (a blank page of that size is about 6 KB)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    png_width, png_height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (png_width, png_height, depth) == (width, height, 8)
    channels = {2: 3, 6: 4}[colour]
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * channels)
    assert len(data) > 40_000
