"""Sanity checks before any load: each benchmarked request must do what it
claims (reach the backend, be authenticated, mapped, counted), else the
figures would measure an error path."""

from __future__ import annotations

import urllib.parse

import defs
from envoys import BACKEND_BODY, ECHO_HEADER, BenchError, Envoy, http_request


def reaches_backend(proxy: Envoy, path: str, headers: list[tuple[str, str]], backend_path: str) -> dict:
    status, got, body = http_request(proxy.port, path, headers)
    text = body.decode(errors="replace")
    if status != 200 or text != BACKEND_BODY or got.get("x-backend-path", "").partition("?")[0] != backend_path:
        raise BenchError(
            f"sanity check: {proxy.name} GET {path} gave {status} {text[:300]!r} (backend path "
            f"{got.get('x-backend-path')!r}); expected 200 {BACKEND_BODY!r} from the backend at {backend_path}")
    return got


def answers(proxy: Envoy, path: str, headers: list[tuple[str, str]], status: int, what: str) -> None:
    got, _, body = http_request(proxy.port, path, headers)
    if got != status:
        raise BenchError(f"sanity check: {proxy.name} GET {path} ({what}) gave {got} {body[:200]!r}; "
                         f"expected {status}")


def pylon(proxy: Envoy, signed: list[tuple[str, str]]) -> None:
    """Pass-through and full-pipeline requests, as wrk will send them."""
    reaches_backend(proxy, defs.PASS_API_PATH, [], "/items/42")
    answers(proxy, "/nothing/here", [], 404, "unknown path")
    reaches_backend(proxy, defs.FULL_PATH, signed, defs.FULL_BACKEND_PATH)
    # The signature is what lets it in, and the ACL and the parameters are
    # checked on it.
    answers(proxy, defs.FULL_PATH, defs.FULL_HEADERS, 401, "unsigned")
    tampered = [(k, v.replace("Signature=", "Signature=0")) for k, v in signed]
    answers(proxy, defs.FULL_PATH, tampered, 401, "wrong signature")
    answers(proxy, defs.FULL_PATH, signed + [("X-Forwarded-For", "8.8.8.8")], 200, "XFF ignored, no trusted hops")
    bad = [(k, "BAD!" if k == "X-Tenant" else v) for k, v in signed]
    answers(proxy, defs.FULL_PATH, bad, 401, "a signed header changed")
    # The backend gets the mapped request.
    got = reaches_backend(proxy, defs.FULL_PATH, signed + [(ECHO_HEADER, "1")], defs.FULL_BACKEND_PATH)
    query = dict(urllib.parse.parse_qsl(got.get("x-backend-path", "").partition("?")[2]))
    headers = {h: got.get(f"x-echo-{h}") for h in defs.FULL_BACKEND_HEADERS}
    if query != defs.FULL_BACKEND_QUERY or headers != defs.FULL_BACKEND_HEADERS:
        raise BenchError(f"sanity check: the full pipeline's backend got query {query} and headers {headers}; "
                         f"expected {defs.FULL_BACKEND_QUERY} and {defs.FULL_BACKEND_HEADERS}")
    if got.get(f"x-echo-{defs.FULL_REQUEST_ID_HEADER}") != got.get("x-request-id"):
        raise BenchError("sanity check: the full pipeline's backend did not get the request id")
    # The throttling policy counts this request (debug headers show it).
    status, got, body = http_request(proxy.port, defs.FULL_PATH, signed + [("X-Apig-Mode", "debug")])
    counters = [h for h in ("x-apig-ratelimit-api", "x-apig-ratelimit-app", "x-apig-ratelimit-ip") if h in got]
    if status != 200 or len(counters) != 3:
        raise BenchError(f"sanity check: debug GET {defs.FULL_PATH} gave {status} {body[:200]!r} with counters "
                         f"{counters}; expected the API, app and IP counters")


def bare(proxy: Envoy) -> None:
    reaches_backend(proxy, defs.PASS_API_PATH, [], defs.PASS_API_PATH)

