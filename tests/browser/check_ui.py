"""Check the Dagster UI of a materialized instance in a real browser, as a user would.

Not a pytest test (the file name does not start with ``test_``; nothing under ``tests/browser`` is
collected): it needs a running UI, a Chromium and Playwright, none of which the suite has.

How to run it:

1. Start the UI on an instance where ``make demo`` has finished (every asset materialized)::

       make ui                      # serves http://127.0.0.1:3000 (bio-assets ui: dagster dev + daemon)

2. In another shell, with any Python that has Playwright (a separate venv is fine; Playwright's own
   browsers are not needed when a system Chromium exists)::

       python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
       /tmp/pw/bin/python tests/browser/check_ui.py --url http://127.0.0.1:3000 --out /tmp/ui-shots

   ``--chromium`` names the browser binary (default ``/usr/bin/chromium``, Debian's package);
   ``--headed`` shows the window.

What it does, each step with a screenshot under ``--out``:

a. ``lineage.png``: from the home page, the "Lineage" navigation link (``/asset-groups``, the global
   asset graph); every group expanded through the graph's context menu ("Expand all groups"), the
   asset sidebar hidden, the graph zoomed and panned to fit a 1600x1500 window (the graph is tall;
   at 1600x1000 its labels are too small to read); it checks that every asset of
   "Materialize all (N)" is drawn (``raw_images`` ... ``metric_reports``).
b. ``metric_reports.png``: the Catalog, then ``demo / metric_reports``: materialized, its
   description and its metadata (report path, accuracies, FID ...), the viewport grown to show it all.
c. ``materialize_all_dialog.png`` and ``materialize_all_preview.png``: "Materialize all" on the
   lineage page; every partition selector of the launch dialog set to "All"; its "Preview" read row
   by row. It fails when a partitioned asset (a partition definition in the preview) has nothing to
   launch, e.g. the old ``demo / synthetic_dataset`` row "No partitions available to materialize".
   Unpartitioned assets show that same sentence in Dagster's preview even though the backfill builds
   them; the report lists them as such. It never clicks "Launch backfill": it closes the preview
   (OK) and the dialog (Cancel) and checks that the dialog is gone.

Throughout, a GraphQL response with ``errors``, an uncaught page exception, or an error panel in the
page fails the step it happens in; console errors and warnings are counted in the report.

It prints a report (also written to ``--out/report.txt``) and exits 0 when every step passed,
1 when one failed (each failure named with its error), 2 when the UI does not answer at all.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
import urllib.request
from pathlib import Path
from urllib.parse import unquote

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, sync_playwright

VIEWPORT = {"width": 1600, "height": 1000}
# The lineage graph is taller than wide: a taller window keeps its labels legible when it all fits.
LINEAGE_VIEWPORT = {"width": 1600, "height": 1500}
ASSET = "demo/metric_reports"
# Asset names that the lineage graph must draw (short enough not to be middle-truncated there).
GRAPH_NAMES = ("raw_images", "image_splits", "augmented_dataset", "synthetic_dataset", "trained_gan", "metric_reports")
METADATA_KEYS = ("report_path", "real_only_accuracy", "extended_accuracy", "tstr_accuracy", "fid_biocnn1")
PREVIEW_ASSETS = ("demo / synthetic_dataset", "demo / extended_classifier", "demo / metric_reports")
NOTHING_TO_LAUNCH = "No partitions available to materialize"
ERROR_PANEL = re.compile(r"Unexpected GraphQL error|PythonError|Something went wrong|Error loading")


class StepFailed(Exception):
    pass


class Check:
    """The browser, what it reports behind the page (GraphQL errors, exceptions), and the report."""

    def __init__(self, page: Page, base: str, out: Path, timeout_ms: int):
        self.page, self.base, self.out, self.timeout = page, base.rstrip("/"), out, timeout_ms
        self.lines: list[str] = []
        self.failures: list[str] = []
        self.console: dict[str, list[str]] = {"error": [], "warning": []}
        self.page_errors: list[str] = []
        self.graphql: list = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("response", lambda r: self.graphql.append(r) if "/graphql" in r.url else None)

    def _on_console(self, message) -> None:
        if message.type in self.console:
            self.console[message.type].append(message.text)

    def say(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def step(self, name: str, function) -> None:
        self.say(f"== {name}")
        started, errors_before = time.monotonic(), len(self.page_errors)
        try:
            function()
            problems = self._graphql_errors() + self.page_errors[errors_before:]
            panel = self._error_panel()
            if panel:
                problems.append(f"error panel in the page: {panel!r}")
            if problems:
                raise StepFailed("; ".join(problems))
            self.say(f"   PASS ({time.monotonic() - started:.1f} s)")
        except Exception as exc:  # a failed step is reported, and the next steps still run
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            self.failures.append(f"{name}: {detail}")
            self.say(f"   FAIL ({time.monotonic() - started:.1f} s): {detail}")
            if not isinstance(exc, (StepFailed, PlaywrightError)):
                traceback.print_exc()
            self._shot(f"failed_{re.sub(r'[^a-z0-9]+', '_', name.lower())[:40]}.png")

    def _graphql_errors(self) -> list[str]:
        found = []
        responses, self.graphql = self.graphql, []
        for response in responses:
            try:
                body = json.loads(response.body())
            except Exception:  # a body no longer available, or not JSON: nothing to judge
                continue
            for item in body if isinstance(body, list) else [body]:
                for error in (item or {}).get("errors") or []:
                    found.append(f"GraphQL error: {str(error.get('message', error))[:300]}")
        return found

    def _error_panel(self) -> str:
        text = self.page.locator("body").inner_text()
        match = ERROR_PANEL.search(text)
        return match.group(0) if match else ""

    def _shot(self, name: str, full_page: bool = True) -> Path:
        path = self.out / name
        try:
            self.page.screenshot(path=str(path), full_page=full_page)
        except PlaywrightError:
            pass
        return path

    # -- helpers --------------------------------------------------------------------------------

    def open_lineage(self) -> Locator:
        """Home page, then the "Lineage" link of the main navigation; waits for the graph."""
        page = self.page
        page.goto(self.base + "/", wait_until="domcontentloaded")
        link = page.locator('a[href="/asset-groups"]').first
        link.wait_for(timeout=self.timeout)
        link.click()
        page.wait_for_url(re.compile(r"/asset-groups"), timeout=self.timeout)
        svg = page.locator("svg[class*=AssetGraphExplorer_svgContainer]").first
        svg.wait_for(timeout=self.timeout)
        page.get_by_role("button", name=re.compile(r"Materialize all")).first.wait_for(timeout=self.timeout)
        settle(page)
        return svg

    def grow_viewport_to_content(self, cap: int = 3000) -> None:
        """The UI scrolls inside panels, so a full-page screenshot stops at the viewport: grow the
        viewport until no panel hides anything (a panel may grow with only part of the window, as
        the preview's table does, hence a few rounds)."""
        hidden_js = """() => Math.max(0, ...Array.from(document.querySelectorAll('*')).map(e => {
            const s = getComputedStyle(e);
            return /(auto|scroll)/.test(s.overflowY) && e.clientHeight > 100
                ? e.scrollHeight - e.clientHeight : 0; }))"""
        height, hidden, rate = VIEWPORT["height"], self.page.evaluate(hidden_js), 1.0
        for _ in range(6):
            if hidden <= 2 or height >= cap:
                break
            step = int(hidden / rate) + 8
            height = min(cap, height + step)
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            self.page.wait_for_timeout(600)
            now = self.page.evaluate(hidden_js)
            rate = max(0.2, min(1.0, (hidden - now) / step)) if now < hidden else 1.0
            hidden = now

    # -- the steps ------------------------------------------------------------------------------

    def lineage(self) -> None:
        page = self.page
        page.set_viewport_size(LINEAGE_VIEWPORT)
        svg = self.open_lineage()
        count = materialize_all_count(page)
        self.say(f"   url {page.url}; 'Materialize all' offers {count} assets")
        container = svg.locator("xpath=../..")
        box = container.bounding_box()
        # Right-click an empty corner of the graph for its context menu.
        page.mouse.click(box["x"] + 25, box["y"] + 90, button="right")
        page.get_by_role("menuitem", name="Expand all groups").first.click(timeout=self.timeout)
        page.wait_for_url(re.compile(r"expanded="), timeout=self.timeout)
        hide_asset_sidebar(page)
        settle(page)
        fit_graph(page, svg, container)
        names = graph_asset_names(svg)
        self.say(f"   {len(names)} asset nodes drawn: {', '.join(sorted(names))}")
        missing = [name for name in GRAPH_NAMES if name not in names]
        if missing:
            raise StepFailed(f"asset nodes not drawn: {missing}")
        if len(names) < count:
            raise StepFailed(f"{len(names)} asset nodes drawn, fewer than the {count} of 'Materialize all'")
        path = self._shot("lineage.png")
        page.set_viewport_size(VIEWPORT)
        self.say(f"   screenshot {path}")

    def asset_page(self) -> None:
        page = self.page
        page.goto(self.base + "/", wait_until="domcontentloaded")
        page.locator('a[href="/assets"]').first.click(timeout=self.timeout)
        link = page.locator(f'a[href="/assets/{ASSET}"]').first
        link.wait_for(timeout=self.timeout)
        link.click()
        page.wait_for_url(re.compile(re.escape(f"/assets/{ASSET}")), timeout=self.timeout)
        page.get_by_text("Latest materialization").first.wait_for(timeout=self.timeout)
        page.get_by_text("Metadata", exact=True).first.wait_for(timeout=self.timeout)
        for key in METADATA_KEYS:
            page.get_by_text(key, exact=True).first.wait_for(timeout=self.timeout)
        settle(page)
        if page.get_by_text("Never materialized").count():
            raise StepFailed(f"{ASSET} is shown as never materialized")
        values = {}
        for key in ("real_only_accuracy", "extended_accuracy", "tstr_accuracy", "fid_biocnn1", "num_shortfalls"):
            row = page.locator("tr").filter(has=page.get_by_text(key, exact=True)).first
            if row.count():
                values[key] = row.locator("td").last.inner_text().strip()
        self.say(f"   url {page.url}; metadata shown: {values}")
        self.grow_viewport_to_content()
        path = self._shot("metric_reports.png")
        page.set_viewport_size(VIEWPORT)
        self.say(f"   screenshot {path}")

    def materialize_all(self) -> None:
        page = self.page
        self.open_lineage()
        page.get_by_role("button", name=re.compile(r"Materialize all")).first.click()
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize").first
        dialog.wait_for(timeout=self.timeout)
        settle(page)
        all_buttons = dialog.get_by_role("button", name="All", exact=True)
        if all_buttons.count() == 0:
            raise StepFailed("the dialog has no partition selection with 'All'")
        for index in range(all_buttons.count()):
            all_buttons.nth(index).click()
        dialog.get_by_text(re.compile(r"\d+ partitions? selected")).first.wait_for(timeout=self.timeout)
        launch = dialog.get_by_role("button", name=re.compile(r"Launch"))
        if launch.count() == 0 or not launch.first.is_enabled():
            raise StepFailed("no enabled Launch button after selecting All partitions")
        self.say("   launch dialog, after 'All':")
        for line in dialog.inner_text().splitlines():
            if line.strip():
                self.say(f"     | {line.strip()}")
        path = self._shot("materialize_all_dialog.png", full_page=False)
        self.say(f"   screenshot {path}")

        dialog.get_by_role("button", name="Preview").first.click()
        preview = page.get_by_role("dialog").filter(has_text="Backfill preview").first
        preview.wait_for(timeout=self.timeout)
        preview.locator("[class*=VirtualizedTable_row]").first.wait_for(timeout=self.timeout)
        settle(page)
        rows = preview_rows(page, preview)
        self.say(
            f"   backfill preview ({len(rows)} assets): asset | backfill policy | partition definition | to launch"
        )
        for key, (policy, definition, launch_text) in sorted(rows.items()):
            self.say(f"     | {key} | {policy} | {definition} | {launch_text}")
        self.grow_viewport_to_content()
        path = self._shot("materialize_all_preview.png", full_page=False)
        page.set_viewport_size(VIEWPORT)
        self.say(f"   screenshot {path}")

        problems = []
        for key in PREVIEW_ASSETS:
            if key not in rows:
                problems.append(f"{key} missing from the preview")
        for key, (_policy, definition, launch_text) in rows.items():
            partitioned = definition.strip() not in ("", "–", "-") or key == "demo / synthetic_dataset"
            count = re.match(r"(\d+) partitions?", launch_text)
            if partitioned and not (count and int(count.group(1)) > 0):
                problems.append(f"{key} is partitioned ({definition}) but the preview says: {launch_text!r}")
        keys_row = preview.locator("[class*=VirtualizedTable_row]").filter(has_text="demo / synthetic_dataset").first
        keys_button = keys_row.get_by_role("button", name=re.compile(r"\d+ partitions?"))
        if keys_button.count():  # the list behind "N partitions": which classes it would build
            keys_button.first.click()
            keys = page.get_by_role("dialog").filter(has_text="Partition selection (").last
            keys.wait_for(timeout=self.timeout)
            lines = [line.strip() for line in keys.inner_text().splitlines() if line.strip()]
            self.say(f"   demo / synthetic_dataset partitions: {lines[1:-1] if len(lines) > 2 else lines}")
            keys.get_by_role("button", name="Close").click()
            keys.wait_for(state="hidden", timeout=self.timeout)
        unpartitioned = sorted(
            k for k, (_p, d, t) in rows.items() if d.strip() in ("", "–", "-") and t == NOTHING_TO_LAUNCH
        )
        if unpartitioned:
            self.say(f"   note: unpartitioned, shown as {NOTHING_TO_LAUNCH!r}: {', '.join(unpartitioned)}")

        preview.get_by_role("button", name="OK").click()
        preview.wait_for(state="hidden", timeout=self.timeout)
        dialog.get_by_role("button", name="Cancel").click()
        dialog.wait_for(state="hidden", timeout=self.timeout)
        self.say("   closed the preview (OK) and the dialog (Cancel); nothing launched")
        if problems:
            raise StepFailed("; ".join(problems))


def settle(page: Page, quiet_ms: int = 800) -> None:
    """Wait for the network to go quiet (the UI polls, so never wait forever), then a moment."""
    try:
        page.wait_for_load_state("networkidle", timeout=10_000)
    except PlaywrightError:
        pass
    page.wait_for_timeout(quiet_ms)


def materialize_all_count(page: Page) -> int:
    label = page.get_by_role("button", name=re.compile(r"Materialize all")).first.inner_text()
    match = re.search(r"\((\d+)\)", label)
    return int(match.group(1)) if match else 0


def hide_asset_sidebar(page: Page) -> None:
    """The toggle beside "Jump to..." (not the main navigation's "Hide navigation")."""
    toggles = page.locator("button:has([aria-label=panel_show_right])").filter(has_not_text="Hide navigation")
    if toggles.count():
        toggles.first.click()
        page.wait_for_timeout(500)


def graph_area(page: Page, container: Locator) -> dict:
    """The part of the graph panel below its toolbar (search box, Materialize all)."""
    box = container.bounding_box()
    button = page.get_by_role("button", name=re.compile(r"Materialize all")).first.bounding_box()
    top = max(box["y"], button["y"] + button["height"] + 10) if button else box["y"] + 60
    return {"x": box["x"], "y": top, "width": box["width"], "height": box["y"] + box["height"] - top}


def fit_graph(page: Page, svg: Locator, container: Locator) -> None:
    """Zoom out (Ctrl+wheel, the graph's own zoom gesture, 5 % a notch) until the whole graph fits
    the panel, then drag it to the middle. The graph draws only the nodes inside the viewport, and
    none below a minimum zoom: if they vanish, zoom back in until they are drawn again."""
    area = graph_area(page, container)
    centre = (area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)

    def zoom(delta: int) -> None:
        page.mouse.move(*centre)
        page.keyboard.down("Control")
        page.mouse.wheel(0, delta)
        page.keyboard.up("Control")
        page.wait_for_timeout(150)

    for _ in range(80):
        box = svg.bounding_box()
        if box["height"] <= area["height"] - 16 and box["width"] <= area["width"] - 16:
            break
        zoom(5)
    for _ in range(20):
        if graph_asset_names(svg):
            break
        zoom(-5)
    box = svg.bounding_box()
    dx = centre[0] - (box["x"] + box["width"] / 2)
    dy = centre[1] - (box["y"] + box["height"] / 2)
    start = (area["x"] + 12, area["y"] + area["height"] - 12)  # bottom-left corner: background
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + dx, start[1] + dy, steps=12)
    page.mouse.up()
    page.mouse.move(5, 5)  # off the graph: no hover highlight in the screenshot
    settle(page, 1500)


def graph_asset_names(svg: Locator) -> set[str]:
    names = svg.locator("[class*=AssetNode_assetName]").all_inner_texts()
    return {name.strip() for name in names if name.strip()}


def preview_rows(page: Page, preview: Locator) -> dict[str, tuple[str, str, str]]:
    """The preview's rows, {asset key: (backfill policy, partition definition, partitions to launch)};
    the table is virtualized, so it is scrolled through and read as it goes."""
    rows: dict[str, tuple[str, str, str]] = {}
    scroller = preview.locator("[class*=VirtualizedTable_container]").first
    for _ in range(50):
        for row in preview.locator("[class*=VirtualizedTable_row]").all():
            cells = row.locator("[class*=VirtualizedTable_cellBox]")
            if cells.count() < 4:
                continue
            texts = [cells.nth(i).inner_text().strip() for i in range(4)]
            key = texts[0].splitlines()[0].strip()
            rows[key] = (texts[1], texts[2], " ".join(texts[3].split()))
        at_end = scroller.evaluate("e => e.scrollTop + e.clientHeight >= e.scrollHeight - 2")
        if at_end:
            break
        scroller.evaluate("e => { e.scrollTop += e.clientHeight * 0.8; }")
        page.wait_for_timeout(250)
    scroller.evaluate("e => { e.scrollTop = 0; }")
    return rows


def wait_for_server(base: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(base.rstrip("/") + "/server_info", timeout=5) as response:
                return response.read().decode()
        except OSError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"the UI at {base} does not answer ({exc}); start it with `make ui` first") from None
            time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--out", default="ui-shots", type=Path, help="folder for the screenshots and report.txt")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="browser binary; '' for Playwright's own")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for any one element")
    parser.add_argument("--wait-server", type=float, default=30, help="seconds to wait for /server_info")
    parser.add_argument("--headed", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        info = wait_for_server(args.url, args.wait_server)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2

    with sync_playwright() as playwright:
        launch = {"headless": not args.headed, "args": ["--no-sandbox"]}
        if args.chromium:
            launch["executable_path"] = args.chromium
        browser = playwright.chromium.launch(**launch)
        context = browser.new_context(viewport=VIEWPORT)  # fresh storage: the UI's defaults, as a new user
        page = context.new_page()
        check = Check(page, args.url, args.out, int(args.timeout * 1000))
        check.say(f"UI {args.url}: {info.strip()}")
        check.step("a. lineage graph", check.lineage)
        check.step(f"b. asset page {ASSET}", check.asset_page)
        check.step("c. Materialize all dialog (not launched)", check.materialize_all)
        browser.close()

    check.say(
        f"browser console: {len(check.console['error'])} errors, {len(check.console['warning'])} warnings; "
        f"{len(check.page_errors)} uncaught page exceptions"
    )
    for kind in ("error", "warning"):
        distinct = sorted(set(check.console[kind]))
        for text in distinct[:5]:
            check.say(f"   console {kind} (x{check.console[kind].count(text)}): {unquote(text)[:300]}")
    check.say(f"screenshots and report in {args.out.resolve()}")
    check.say("RESULT: " + ("all steps passed" if not check.failures else f"{len(check.failures)} step(s) failed"))
    for failure in check.failures:
        check.say(f"   {failure}")
    (args.out / "report.txt").write_text("\n".join(check.lines) + "\n")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
