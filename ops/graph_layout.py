"""A deterministic layered layout of a small directed graph: nodes in a grid, edges as
orthogonal SVG paths that never cross a node.

Columns: a node's column is the longest path to it from a node without predecessors (edges that
close a cycle are left out), so every other edge points right. Rows: in each column, nodes take
the row nearest the mean row of their predecessors, the first free one from there down, in the
order given (put the usual path first and it runs along the top row). Edges: out of the source's
right side into the column gap, along a gap between two rows (which holds no node) to the gap
left of the target, into its left side; an edge to the next column or along an empty row is
drawn straight. Edges sharing a gap get lanes of their own so that they stay apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

NODE_WIDTH: Final = 124
NODE_HEIGHT: Final = 42
COLUMN_GAP: Final = 32
ROW_GAP: Final = 40
MARGIN: Final = 16

Edge = tuple[str, str]
Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    column: int
    row: int

    @property
    def right(self) -> Point:
        return (self.x + NODE_WIDTH, self.y + NODE_HEIGHT / 2)

    @property
    def left(self) -> Point:
        return (self.x, self.y + NODE_HEIGHT / 2)


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    paths: dict[Edge, list[Point]]  # each edge's corner points, source to target
    view_box: tuple[float, float, float, float]  # left, top, width, height: all of it, margins


def back_edges(nodes: Sequence[str], edges: Sequence[Edge]) -> set[Edge]:
    """The edges that close a cycle, found depth first from the nodes in the order given."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for source, target in edges:
        successors[source].append(target)
    back: set[Edge] = set()
    done: set[str] = set()
    on_path: set[str] = set()

    def visit(node: str) -> None:
        on_path.add(node)
        for target in successors[node]:
            if target in on_path:
                back.add((node, target))
            elif target not in done:
                visit(target)
        on_path.discard(node)
        done.add(node)

    for node in nodes:
        if node not in done:
            visit(node)
    return back


def columns_of(nodes: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Each node's longest path from a node without predecessors, back edges left out."""
    ignored = back_edges(nodes, edges)
    predecessors: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        if edge not in ignored:
            predecessors[edge[1]].append(edge[0])
    columns: dict[str, int] = {}

    def column(node: str) -> int:
        if node not in columns:
            columns[node] = max((column(p) + 1 for p in predecessors[node]), default=0)
        return columns[node]

    for node in nodes:
        column(node)
    return columns


def rows_of(nodes: Sequence[str], edges: Sequence[Edge], columns: dict[str, int]) -> dict[str, int]:
    rows: dict[str, int] = {}
    for current in sorted(set(columns.values())):
        taken: set[int] = set()
        for node in (n for n in nodes if columns[n] == current):
            placed = [rows[s] for s, t in edges if t == node and s in rows]
            row = round(sum(placed) / len(placed)) if placed else 0
            while row in taken:
                row += 1
            taken.add(row)
            rows[node] = row
    return rows


def layout(nodes: Sequence[str], edges: Sequence[Edge]) -> Layout:
    columns = columns_of(nodes, edges)
    rows = rows_of(nodes, edges, columns)
    boxes = {
        n: Box(
            columns[n] * (NODE_WIDTH + COLUMN_GAP),
            rows[n] * (NODE_HEIGHT + ROW_GAP),
            columns[n],
            rows[n],
        )
        for n in nodes
    }
    paths = _route(boxes, edges)
    return Layout(boxes, paths, _bounds(boxes, paths))


def _bounds(
    boxes: dict[str, Box], paths: dict[Edge, list[Point]]
) -> tuple[float, float, float, float]:
    """The box around every node and path point (an edge may run below the last row, or left
    of the first column when it goes back to it), with a margin."""
    xs = [x for b in boxes.values() for x in (b.x, b.x + NODE_WIDTH)]
    ys = [y for b in boxes.values() for y in (b.y, b.y + NODE_HEIGHT)]
    xs += [x for points in paths.values() for x, _ in points]
    ys += [y for points in paths.values() for _, y in points]
    left, top = min(xs, default=0.0) - MARGIN, min(ys, default=0.0) - MARGIN
    return (left, top, max(xs, default=0.0) + MARGIN - left, max(ys, default=0.0) + MARGIN - top)


def _route(boxes: dict[str, Box], edges: Sequence[Edge]) -> dict[Edge, list[Point]]:
    """Lanes first (how many edges use each gap), then the points of each edge."""
    occupied = {(b.column, b.row) for b in boxes.values()}
    column_lanes: dict[int, list[Edge]] = {}  # gap right of column c: its vertical runs
    row_lanes: dict[int, list[Edge]] = {}  # gap above row r: its horizontal runs
    plans: dict[Edge, tuple[int, int] | None] = {}
    for edge in edges:
        source, target = boxes[edge[0]], boxes[edge[1]]
        straight = source.row == target.row and not any(
            (c, source.row) in occupied for c in range(source.column + 1, target.column)
        )
        if straight and target.column > source.column:
            plans[edge] = None
            continue
        gutter = max(source.row, target.row) + (1 if source.row == target.row else 0)
        plans[edge] = (source.column, gutter)
        column_lanes.setdefault(source.column, []).append(edge)
        if target.column - 1 != source.column:
            column_lanes.setdefault(target.column - 1, []).append(edge)
            row_lanes.setdefault(gutter, []).append(edge)
    paths: dict[Edge, list[Point]] = {}
    for edge, plan in plans.items():
        start, end = boxes[edge[0]].right, boxes[edge[1]].left
        if plan is None:
            paths[edge] = [start, end]
            continue
        out_x = _lane(column_lanes[plan[0]], edge, _gap_left(plan[0]), COLUMN_GAP)
        in_column = boxes[edge[1]].column - 1
        if in_column == plan[0]:
            paths[edge] = [start, (out_x, start[1]), (out_x, end[1]), end]
            continue
        in_x = _lane(column_lanes[in_column], edge, _gap_left(in_column), COLUMN_GAP)
        run_y = _lane(row_lanes[plan[1]], edge, _gap_top(plan[1]), ROW_GAP)
        paths[edge] = [start, (out_x, start[1]), (out_x, run_y), (in_x, run_y), (in_x, end[1]), end]
    return paths


def _gap_left(column: int) -> float:
    """The x where the gap right of ``column`` begins."""
    return column * (NODE_WIDTH + COLUMN_GAP) + NODE_WIDTH


def _gap_top(row: int) -> float:
    """The y where the gap above ``row`` begins."""
    return row * (NODE_HEIGHT + ROW_GAP) - ROW_GAP


def _lane(users: list[Edge], edge: Edge, start: float, size: float) -> float:
    """Where ``edge`` runs in a gap shared by ``users``: evenly spread across it."""
    return start + size * (users.index(edge) + 1) / (len(users) + 1)
