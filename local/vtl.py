"""API Gateway (REST) mapping-template renderer for local mode, on airspeed-ext.

Renders a request or response mapping template the way API Gateway does, with the variables
API Gateway provides:

- ``$input``: ``body`` (the raw payload), ``path(p)`` (JSONPath, returns objects), ``json(p)``
  (JSONPath, returns JSON text; an empty payload reads as ``{}``), ``params()``
  (``{"path", "querystring", "header"}``) and ``params(name)`` (path, then query string, then
  header; header names case-insensitive).
- ``$util``: ``escapeJavaScript`` (Java commons-lang ``StringEscapeUtils.escapeJavaScript``,
  which is what API Gateway runs: ``'`` -> ``\\'``, ``/`` -> ``\\/``, control and non-ASCII
  characters -> ``\\uXXXX``, astral characters as two escaped surrogates), ``parseJson``,
  ``urlEncode``/``urlDecode`` (Java ``URLEncoder``/``URLDecoder``, UTF-8),
  ``base64Encode``/``base64Decode`` (of the UTF-8 text).
- ``$context`` (the given mapping plus ``responseOverride.status``/``responseOverride.header``
  and ``requestOverride``) and ``$stageVariables``.
- Strings have the ``java.lang.String`` methods templates use; ``replaceAll`` takes Java's
  replacement syntax (``$1`` for a group, ``\\$`` for a dollar sign), and ``toLowerCase`` and
  ``toUpperCase`` exist (airspeed lacks them).

Known differences from API Gateway's Java Velocity, inherited from airspeed: a null reference in
``#if`` counts as true and ``!null`` as false; ``#set`` to null does assign. Templates meant to
run on both should test ``"$!x" == ""`` instead of null-ness.

Thread-safe: compiled templates are cached (keyed by their text) and shared; every render gets
its own variables. The local API (:mod:`local.gateway`) calls :func:`render` for every request
and response.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast
from urllib.parse import quote_plus, unquote_plus

import airspeed
import airspeed.operators
from jsonpath_ng import parse as _jsonpath_parse

__all__ = ["Rendered", "TemplateRenderError", "escape_javascript", "render"]


@dataclass(frozen=True)
class Rendered:
    """The rendered text and what the template set in ``$context.responseOverride``."""

    text: str
    status_override: int | None = None
    header_overrides: dict[str, str] = field(default_factory=dict)


class TemplateRenderError(Exception):
    """The template does not parse, or failed while rendering (API Gateway answers 500)."""


# --- Java-like values -----------------------------------------------------------------------


def _java_string(value: object) -> str:
    """``String.valueOf`` as Velocity would print the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class VtlMap(dict[Any, Any]):
    """A ``java.util.Map``: prints as ``{k=v, ...}`` and has the Map methods templates use.

    (airspeed looks extra methods up by exact class, so a dict subclass brings its own.)
    """

    def __str__(self) -> str:
        return (
            "{" + ", ".join(f"{_java_string(k)}={_java_string(v)}" for k, v in self.items()) + "}"
        )

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def containsKey(self, key: object) -> bool:
        return key in self

    def keySet(self) -> list[Any]:
        return VtlList(self.keys())

    def put(self, key: object, value: object) -> Any:
        previous = self.get(key)
        self[key] = value
        return previous

    def putAll(self, other: Mapping[Any, Any]) -> None:
        for key, value in other.items():
            self[key] = value


class HeaderMap(VtlMap):
    """Request headers: lookups ignore the case of the name, as API Gateway's do."""

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._names: dict[str, str] = {}
        for name, value in (items or {}).items():
            self[name] = value

    def _actual(self, key: object) -> object:
        return self._names.get(key.lower(), key) if isinstance(key, str) else key

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, str):
            previous = self._names.get(key.lower())
            if previous is not None and previous != key:
                super().__delitem__(previous)
            self._names[key.lower()] = key
        super().__setitem__(key, value)

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self._actual(key))

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._actual(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(self._actual(key), default)


class VtlList(list[Any]):
    """A ``java.util.List`` (prints as JSON, as API Gateway prints JSONPath results)."""

    def __str__(self) -> str:
        return json.dumps(self, ensure_ascii=False, separators=(",", ":"), default=str)

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def contains(self, value: object) -> bool:
        return value in self

    def get(self, index: int) -> Any:
        return self[index]

    def add(self, value: object) -> bool:
        self.append(value)
        return True

    def set(self, index: int, value: object) -> Any:
        previous = self[index]
        self[index] = value
        return previous


def _to_vtl(value: Any) -> Any:
    if isinstance(value, Mapping):
        return VtlMap((k, _to_vtl(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return VtlList(_to_vtl(v) for v in value)
    return value


# --- $util ----------------------------------------------------------------------------------

_JS_SHORT_ESCAPES = {
    "'": "\\'",
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\n": "\\n",
    "\t": "\\t",
    "\f": "\\f",
    "\r": "\\r",
}
# commons-lang leaves 0x20-0x7F alone except the four characters above; DEL (0x7F) stays as is.
# Those four are replaced by str.replace (a base64 file has thousands of '/'), backslash first so
# that the backslashes the others add are not escaped again; the rest by one regex pass.
_JS_ASCII_ESCAPES = ("\\", "'", '"', "/")
_JS_NEEDS_ESCAPE = re.compile("[^\x20-\x7f]")


def _escape_js_char(match: re.Match[str]) -> str:
    char = match.group()
    short = _JS_SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code > 0xFFFF:  # Java strings are UTF-16: an astral character is two escaped surrogates
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"
    return f"\\u{code:04X}"


def escape_javascript(text: str) -> str:
    """Java commons-lang ``StringEscapeUtils.escapeJavaScript`` (API Gateway's implementation)."""
    for char in _JS_ASCII_ESCAPES:
        text = text.replace(char, _JS_SHORT_ESCAPES[char])
    return _JS_NEEDS_ESCAPE.sub(_escape_js_char, text)


class VelocityUtil:
    """``$util`` of API Gateway mapping templates."""

    def escapeJavaScript(self, value: object) -> str | None:
        if value is None:
            return None  # Java returns null
        return escape_javascript(value if isinstance(value, str) else _java_string(value))

    def parseJson(self, text: str) -> Any:
        return _to_vtl(json.loads(text))

    def urlEncode(self, text: str) -> str:
        # java.net.URLEncoder: keeps A-Za-z0-9 . - * _ and writes space as +.
        return quote_plus(text, safe="*", encoding="utf-8").replace("~", "%7E")

    def urlDecode(self, text: str) -> str:
        return unquote_plus(text, encoding="utf-8", errors="strict")

    def base64Encode(self, text: str) -> str:
        return base64.b64encode(_java_string(text).encode("utf-8")).decode("ascii")

    def base64Decode(self, text: str) -> str:
        try:
            return base64.b64decode(text, validate=False).decode("utf-8", errors="replace")
        except binascii.Error as error:
            raise ValueError(f"invalid base64: {error}") from None


# --- $input ---------------------------------------------------------------------------------

_jsonpath_lock = threading.Lock()


@lru_cache(maxsize=256)
def _compile_jsonpath(expression: str) -> Any:
    with _jsonpath_lock:  # PLY's parser objects are not meant to be shared while parsing
        return _jsonpath_parse(expression)


_NOT_PARSED = object()


class VelocityInput:
    """``$input`` of API Gateway mapping templates."""

    def __init__(self, body: str, parameters: VtlMap) -> None:
        self.body = body
        self._parameters = parameters
        self._document: object = _NOT_PARSED

    def _json_document(self) -> Any:
        if self._document is _NOT_PARSED:
            try:
                # API Gateway reads an empty payload (a GET's) as an empty object: json('$') is {}.
                self._document = json.loads(self.body) if self.body.strip() else {}
            except (ValueError, RecursionError):  # too deeply nested for Python counts as not JSON
                self._document = None  # not JSON: every path finds nothing
        return self._document

    def _find(self, expression: str) -> Any:
        document = self._json_document()
        if document is None:
            return None
        matches = [match.value for match in _compile_jsonpath(expression or "$").find(document)]
        if not matches:
            return None
        return matches[0] if len(matches) == 1 else matches

    def path(self, expression: str) -> Any:
        """The JSONPath's value as objects (a map, a list, a string, a number, ...)."""
        return _to_vtl(self._find(expression))

    def json(self, expression: str) -> str:
        """The JSONPath's value as JSON text."""
        return json.dumps(self._find(expression), ensure_ascii=False, separators=(",", ":"))

    def params(self, name: str | None = None) -> Any:
        if name is None:
            return self._parameters
        for kind in ("path", "querystring", "header"):
            value = self._parameters[kind].get(name)
            if value is not None:
                return value
        return ""


# --- java.lang.String ----------------------------------------------------------------------

_REPLACEMENT_PART = re.compile(r"\\(.)|\$(\d+)|([^\\$]+)", re.DOTALL)


def _java_replace_all(text: str, pattern: str, replacement: str) -> str:
    """``String.replaceAll``: ``$n`` in the replacement is group n, ``\\x`` is ``x`` itself."""
    parts: list[str | int] = []
    for escaped, group, literal in _REPLACEMENT_PART.findall(replacement):
        parts.append(int(group) if group else escaped or literal)
    if all(isinstance(part, str) for part in parts):
        # No group in it: one literal for every match, with no Python call per match (a base64
        # body has thousands of escaped '/').
        return re.sub(pattern, "".join(map(str, parts)).replace("\\", "\\\\"), text)

    def substitute(match: re.Match[str]) -> str:
        return "".join(
            part if isinstance(part, str) else (match.group(part) or "") for part in parts
        )

    return re.sub(pattern, substitute, text)


def _install_string_methods() -> None:
    """airspeed looks extra methods up by the value's exact class: Java's, for ``str``."""
    methods = airspeed.operators.__additional_methods__[str]
    methods["replaceAll"] = _java_replace_all
    methods["toLowerCase"] = str.lower
    methods["toUpperCase"] = str.upper


_install_string_methods()


# --- rendering ------------------------------------------------------------------------------


@lru_cache(maxsize=128)
def _compile(template: str) -> airspeed.Template:
    compiled = airspeed.Template(template)
    compiled.ensure_compiled()  # parse now, so that the shared object is never parsed twice
    return compiled


def _string_map(values: Mapping[str, object] | None) -> VtlMap:
    return VtlMap((str(k), _java_string(v)) for k, v in (values or {}).items())


def _context(context: Mapping[str, Any]) -> VtlMap:
    vtl_context = cast(VtlMap, _to_vtl(dict(context)))
    response_override = vtl_context.get("responseOverride")
    if not isinstance(response_override, VtlMap):
        response_override = VtlMap()
    response_override.setdefault("status", None)
    if not isinstance(response_override.get("header"), VtlMap):
        response_override["header"] = VtlMap()
    vtl_context["responseOverride"] = response_override
    request_override = vtl_context.get("requestOverride")
    if not isinstance(request_override, VtlMap):
        request_override = VtlMap()
    for part in ("header", "path", "querystring"):
        if not isinstance(request_override.get(part), VtlMap):
            request_override[part] = VtlMap()
    vtl_context["requestOverride"] = request_override
    return vtl_context


def _status(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = _java_string(value).strip()
    return int(text) if text.isdigit() else None


def render(
    template: str,
    *,
    body: str,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
    path_params: Mapping[str, str] | None = None,
    context: Mapping[str, Any],
    stage_variables: Mapping[str, str] | None = None,
) -> Rendered:
    """Render an API Gateway mapping template.

    ``body`` is the payload the template reads (the client's body for a request template, the
    integration's answer for a response template); ``headers``/``query``/``path_params`` are the
    method request's parameters; ``context`` becomes ``$context`` (e.g. ``{"requestId": ...}``).
    Raises :class:`TemplateRenderError` when the template does not parse or fails.
    """
    parameters = VtlMap(
        path=_string_map(path_params),
        querystring=_string_map(query),
        header=HeaderMap({str(k): _java_string(v) for k, v in headers.items()}),
    )
    vtl_context = _context(context)
    namespace: dict[str, Any] = {
        "input": VelocityInput(body, parameters),
        "util": VelocityUtil(),
        "context": vtl_context,
        "stageVariables": _string_map(stage_variables),
    }
    try:
        text = _compile(template).merge(namespace)
    except airspeed.TemplateError as error:
        raise TemplateRenderError(str(error)) from error
    response_override = vtl_context["responseOverride"]
    header_overrides = response_override.get("header")
    return Rendered(
        text=cast(str, text),
        status_override=_status(response_override.get("status")),
        header_overrides={
            str(name): _java_string(value)
            for name, value in cast(Iterable[tuple[object, object]], header_overrides.items())
        }
        if isinstance(header_overrides, Mapping)
        else {},
    )
