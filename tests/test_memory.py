"""Peak memory is a property of the design, not of the page: bounded for large inputs."""

from __future__ import annotations

from tests import render
from tests.test_http import assert_reads

A4_LINES = [
    f"Line {i:02d}: the quick brown fox jumps over the lazy dog 0123456789" for i in range(44)
]


def test_a_dense_a4_page_and_a_12_mp_photo_stay_under_the_bound_in_a_fresh_process(servers):
    # A process of its own, so that nothing served before shapes its peak. Measured ~215-240 MB
    # on the development machine (the goal is 250 MB); the bound leaves room for other builds
    # of the same libraries, and is far below the ~600 MB the same page cost before strips.
    server = servers(MEMORY_ATTENTION_MB="1000")
    page = render.page(A4_LINES, size=(2480, 3508), font_size=42, origin=(150, 150)).image
    for data, lines in [
        (render.encode(page, "JPEG", quality=90), A4_LINES),
        (render.noisy_photo(), ["PHOTO 2026"]),
    ]:
        response = server.post(data, "application/octet-stream")
        assert response.status_code == 200, response.text
        body = response.json()
        assert_reads(body, lines)
        assert body["memory"]["peak_rss_mb"] < 320, body["memory"]
