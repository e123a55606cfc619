"""The API's documentation page renders in Chromium under its Content-Security-Policy, at phone and desktop width."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.test_browser import browser, contexts, shot  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", [390, 1280])
def test_the_api_docs_render_under_the_csp(stack, contexts, width):  # noqa: F811 - the fixture imported above
    context = contexts()
    context.add_cookies([stack.session_cookie()])
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 844})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))

    response = page.goto(f"{stack.web_url}/api/docs/")

    assert response is not None and response.status == 200
    assert "script-src" in response.headers["content-security-policy"]
    expect(page.locator("h1", has_text="TikTok Inbox API")).to_be_visible(timeout=20_000)
    # Redoc has read the schema: an operation of the conversations API is listed.
    expect(page.get_by_text("/api/v1/conversations/", exact=False).first).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1  # no sideways scrolling
    shot(page, f"api-docs-{width}.png")
    # No script error and nothing refused but Redoc's hard-coded Redocly logo, which our CSP blocks on purpose.
    logo = "cdn.redoc.ly/redoc/logo-mini.svg"
    assert [p for p in problems if logo not in p] == [], problems
    assert any(logo in p and "Content Security Policy" in p for p in problems), problems
