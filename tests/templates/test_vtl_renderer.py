"""local/vtl.py: API Gateway's $input, $util and $context on airspeed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from local.vtl import Rendered, TemplateRenderError, escape_javascript, render


def _text(template: str, body: str = "") -> str:
    return render(template, body=body, headers={}, context={}).text


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        # commons-lang's own example
        ('He didn\'t say, "Stop!"', 'He didn\\\'t say, \\"Stop!\\"'),
        ("a/b\\c", "a\\/b\\\\c"),
        ("\b\f\n\r\t", "\\b\\f\\n\\r\\t"),
        ("\x00\x01\x1f", "\\u0000\\u0001\\u001F"),
        ("\x7f~ <>&", "\x7f~ <>&"),  # DEL and the rest of ASCII stay
        ("caf\u00e9 \u20ac \u00ff \u0100", "caf\\u00E9 \\u20AC \\u00FF \\u0100"),
        ("\U0001f600", "\\uD83D\\uDE00"),  # Java strings are UTF-16
        ("", ""),
    ],
)
def test_escape_javascript_is_commons_lang(raw: str, escaped: str) -> None:
    assert escape_javascript(raw) == escaped
    assert _text("$util.escapeJavaScript($input.body)", raw) == escaped


def test_escape_javascript_then_replace_all_gives_a_json_string() -> None:
    raw = 'it\'s "x" \\ / \u00e9 \U0001f600 \n'
    text = _text('"$util.escapeJavaScript($input.body).replaceAll("\\\\\'","\'")"', raw)

    assert json.loads(text) == raw


def test_input_body_path_and_json() -> None:
    body = json.dumps({"a": {"b": [1, 2, {"c": "x"}]}, "s": "t\u00e9xt", "n": None})
    template = (
        "$input.body|$input.path('$.s')|$input.path('$.a.b').size()|$input.path('$.a.b[2].c')"
        "|$input.json('$.a')|$input.json('$.s')|[$input.path('$.missing')]"
        "|$input.json('$.missing')|$input.path('$.a').b.get(0)"
    )

    assert _text(template, body).split("|") == [
        body,
        "t\u00e9xt",
        "3",
        "x",
        '{"b":[1,2,{"c":"x"}]}',
        '"t\u00e9xt"',
        "[]",
        "null",
        "1",
    ]


def test_path_on_a_body_that_is_not_json_finds_nothing() -> None:
    assert _text("[$input.path('$.a')]", "not json") == "[]"


def test_params_headers_are_case_insensitive_and_searched_after_path_and_query() -> None:
    template = (
        "$input.params('content-type')|$input.params('X-Id')|$input.params('id')"
        "|[$input.params('nothing')]|$input.params().header.get('CONTENT-TYPE')"
        "|$input.params().querystring.get('q')|$input.params().path.size()"
    )
    rendered = render(
        template,
        body="",
        headers={"Content-Type": "application/json", "x-id": "h", "id": "from-header"},
        query={"q": "1", "id": "from-query"},
        path_params={"id": "from-path"},
        context={},
    )

    assert rendered.text.split("|") == [
        "application/json",
        "h",
        "from-path",
        "[]",
        "application/json",
        "1",
        "1",
    ]


def test_parse_json_url_and_base64() -> None:
    template = (
        "#set($doc = $util.parseJson($input.body))$doc.m|$doc.list.size()|$doc.o.k"
        "|$util.urlEncode('a b&c=d/*~')|$util.urlDecode('a+b%26%C3%A9')"
        "|$util.base64Encode('caf\u00e9')|$util.base64Decode('Y2Fmw6k=')"
    )
    body = '{"m": "msg", "list": [1, 2], "o": {"k": "v"}}'

    assert _text(template, body).split("|") == [
        "msg",
        "2",
        "v",
        "a+b%26c%3Dd%2F*%7E",
        "a b&\u00e9",
        "Y2Fmw6k=",
        "caf\u00e9",
    ]


def test_context_stage_variables_and_response_overrides() -> None:
    context = {"requestId": "r-1", "identity": {"sourceIp": "127.0.0.1"}}
    rendered = render(
        "#set($context.responseOverride.status = 418)"
        '#set($context.responseOverride.header.X-Trace = "t-$context.requestId")'
        "$context.requestId $context.identity.sourceIp $stageVariables.stage",
        body="",
        headers={},
        context=context,
        stage_variables={"stage": "prod"},
    )

    assert rendered == Rendered("r-1 127.0.0.1 prod", 418, {"X-Trace": "t-r-1"})
    assert "responseOverride" not in context  # the caller's mapping is not changed


def test_without_overrides_there_are_none() -> None:
    assert render("x", body="", headers={}, context={}) == Rendered("x", None, {})


def test_a_status_set_as_text_is_a_number() -> None:
    rendered = render(
        '#set($context.responseOverride.status = "503")', body="", headers={}, context={}
    )

    assert rendered.status_override == 503


def test_errors_are_reported_as_template_render_errors() -> None:
    with pytest.raises(TemplateRenderError):
        render("#if($x", body="", headers={}, context={})
    with pytest.raises(TemplateRenderError):
        render("$util.parseJson($input.body)", body="{not json", headers={}, context={})


def test_concurrent_renders_are_independent() -> None:
    template = (
        "#set($context.responseOverride.status = $util.parseJson($input.body).n)"
        "$input.params('n')-$context.requestId"
    )

    def one(n: int) -> Rendered:
        return render(
            template,
            body=json.dumps({"n": n}),
            headers={"N": str(n)},
            context={"requestId": f"r{n}"},
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(200)))

    assert [(r.text, r.status_override) for r in results] == [(f"{n}-r{n}", n) for n in range(200)]
