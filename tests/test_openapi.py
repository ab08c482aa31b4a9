"""The OpenAPI description (extender/protocol/openapi.yaml) is valid OpenAPI 3.1 and agrees with
the code: every route the app registers is described and every described route exists, under
the url prefix where the description says so; kube-scheduler's own encoding (the golden
requests) is what it describes, and so are the app's answers to them.

Why: the description documents the API for users and is what schemathesis tests the server
against (tests/test_openapi_schemathesis.py); a route added without it, or a description of a
route that is gone, would make both wrong without anyone noticing."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from flask import Flask
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from extender.protocol import OPENAPI_PATH
from extender.server.app import create_app
from extender.settings import Settings

GOLDEN = Path(__file__).resolve().parent / "golden"
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # Flask answers these for every route by itself
STATIC = "static"  # Flask's own route for files of extender/static, which does not exist: a 404


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text())
    return loaded


def schema_validator(ref: str) -> jsonschema.Draft202012Validator:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) of the component at ``ref``
    (``#/components/...``), its references resolved within the description."""
    return jsonschema.Draft202012Validator({**spec(), "$ref": ref})


def routes(app: Flask) -> set[tuple[str, str]]:
    """(path, method) of every route ``app`` registers, paths written as OpenAPI writes them."""
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == STATIC:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out |= {(path, method) for method in (rule.methods or set()) - AUTOMATIC_METHODS}
    return out


def described(prefix: str) -> set[tuple[str, str]]:
    """(path, method) of every operation the description has, each path under ``prefix``
    where the servers that serve it carry the url prefix."""
    top = spec()["servers"]
    out = set()
    for path, item in spec()["paths"].items():
        servers = item.get("servers", top)
        assert all(("{urlPrefix}" in s["url"]) == ("{urlPrefix}" in servers[0]["url"]) for s in servers)
        full = prefix + path if "{urlPrefix}" in servers[0]["url"] else path
        out |= {(full, method.upper()) for method in item if method in ("get", "post", "put", "delete")}
    return out


def test_the_description_is_valid_openapi_3_1() -> None:
    assert spec()["openapi"].startswith("3.1.")
    validate(spec(), cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize("prefix", ["", "/scheduler"])
def test_every_route_is_described_and_every_described_route_exists(prefix: str) -> None:
    app = create_app(Settings(api_access=False, url_prefix=prefix, debug_endpoints=True))
    assert routes(app) == described(prefix)
    static = app.test_client().get("/static/extender-policy.yaml")
    assert static.status_code == 404 and static.get_json()["Error"].startswith("404")


def test_every_verb_answers_errors_as_json_and_never_documents_a_5xx() -> None:
    """The promise of the description: 4xx with ``{"Error": ...}``, never a 5xx."""
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post"):
                continue
            for status, response in op["responses"].items():
                assert not status.startswith("5") or status == "503", (path, method, status)
                if status.startswith("4"):
                    if "$ref" in response:
                        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)


REQUESTS = {
    "filter-nodes": ("/filter", "ExtenderArgs"),
    "filter-names": ("/filter", "ExtenderArgs"),
    "prioritize-nodes": ("/prioritize", "ExtenderArgs"),
    "prioritize-names": ("/prioritize", "ExtenderArgs"),
    "bind": ("/bind", "ExtenderBindingArgs"),
    "preempt-victims": ("/preempt", "ExtenderPreemptionArgs"),
    "preempt-meta": ("/preempt", "ExtenderPreemptionArgs"),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_kube_schedulers_encoding_is_what_the_description_says(name: str) -> None:
    """The golden requests are byte for byte what kube-scheduler's Go client sends; the golden
    responses, what the extender must answer."""
    path, schema = REQUESTS[name]
    schema_validator(f"#/components/schemas/{schema}").validate(
        json.loads((GOLDEN / f"{name}.request.json").read_bytes())
    )
    answer = GOLDEN / f"{name}.response.json"
    if answer.exists():
        ref = spec()["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        schema_validator(ref["$ref"]).validate(json.loads(answer.read_bytes()))


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_apps_answers_to_the_golden_requests_are_described(name: str) -> None:
    """Stateless, without API access: the names-form requests get a 400, bind an ``Error``."""
    path, _ = REQUESTS[name]
    client = create_app(Settings(api_access=False)).test_client()
    reply = client.post(path, data=(GOLDEN / f"{name}.request.json").read_bytes())
    response = spec()["paths"][path]["post"]["responses"][str(reply.status_code)]
    if "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    assert reply.mimetype in response["content"]
    ref = response["content"][reply.mimetype]["schema"]["$ref"]
    schema_validator(ref).validate(reply.get_json())
    for header in response.get("headers", {}):
        assert header in reply.headers


def test_a_405_names_the_methods_the_path_takes() -> None:
    """Found by schemathesis: a 405 had no ``Allow`` header (RFC 9110 requires one), since the
    JSON error answer replaced werkzeug's response and its headers."""
    client = create_app(Settings(api_access=False)).test_client()
    for method, path, allowed in (
        ("GET", "/filter", "POST"),
        ("TRACE", "/livez", "GET"),
        ("PUT", "/bind", "POST"),
    ):
        reply = client.open(path, method=method)
        assert reply.status_code == 405
        assert allowed in {m.strip() for m in reply.headers.get("Allow", "").split(",")}
        assert reply.mimetype == "application/json" and reply.get_json()["Error"].startswith("405")
