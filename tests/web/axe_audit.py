"""axe-core, run inside a Playwright page, for the browser tests' accessibility checks.

The engine is the copy vendored in tests/browser_vendor/axe-core (nothing comes from a CDN). The
page's Content Security Policy allows scripts from its own origin only, and the check must not
weaken it: Playwright answers one made-up path on the page's own origin with the vendored file,
and the page loads it with an ordinary ``<script src>``, which the policy allows as it is.

Example::

    serve_axe(context, server.url)
    page.goto(server.url + "/")
    assert_accessible(page, "first load")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["AXE_JS", "AXE_TAGS", "assert_accessible", "axe_violations", "serve_axe"]

AXE_JS = Path(__file__).resolve().parent.parent / "browser_vendor" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, and Deque's best practices (landmarks, allowed roles, one h1, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# A path the app never serves: only the route below answers it.
AXE_PATH = "/__test__/axe.min.js"

_RUN = """tags => axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
}).then(results => results.violations.map(v => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
})))"""


def serve_axe(context: Any, origin: str) -> None:
    """Answer ``origin`` + AXE_PATH with the vendored axe-core in every page of ``context``."""
    source = AXE_JS.read_bytes()
    context.route(
        origin + AXE_PATH,
        lambda route: route.fulfill(
            status=200, body=source, content_type="application/javascript; charset=utf-8"
        ),
    )


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe's violations on what ``page`` shows now (the engine is loaded once per document)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=AXE_PATH)
    violations: list[dict[str, Any]] = page.evaluate(_RUN, AXE_TAGS)
    return violations


def assert_accessible(page: Any, screen: str) -> None:
    """Fail with every violation spelled out: rule, impact, what to fix and where."""
    violations = axe_violations(page)
    if not violations:
        return
    lines = [f"axe-core found {len(violations)} violation(s) on the {screen} screen:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join(str(node["summary"]).split())
            lines.append(f"    at {node['target']}: {summary}")
    raise AssertionError("\n".join(lines))
