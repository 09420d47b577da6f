"""Structured logs as Cloud Logging reads them: one JSON object per line, severity, trace id."""

from __future__ import annotations

import json

from tests import render


def test_json_logs_carry_severity_trace_and_the_invocation_fields(servers):
    server = servers(LOG_FORMAT="json", LOG_LEVEL="INFO", GOOGLE_CLOUD_PROJECT="demo-project")
    image = render.encode(render.page(["Logged request"], size=(600, 120)).image, "PNG")
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    response = server.post(image, headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1"})
    assert response.status_code == 200
    bad = server.post(b"", headers={"X-Cloud-Trace-Context": f"{trace}/2;o=1"})
    assert bad.status_code == 400

    entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    invocations = [e for e in entries if e.get("method") == "POST"]
    ok, refused = invocations[-2], invocations[-1]
    assert ok["severity"] == "INFO"
    assert ok["logging.googleapis.com/trace"] == f"projects/demo-project/traces/{trace}"
    assert ok["status"] == 200 and ok["lines"] == 1
    assert ok["peak_rss_mb"] > 0 and ok["total_ms"] > 0 and ok["bytes_in"] == len(image)
    assert refused["error"] == "empty_body" and refused["status"] == 400
    assert all(not line or line.startswith("{") for line in server.log().splitlines()), (
        "every line on the platform must be JSON"
    )
