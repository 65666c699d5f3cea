"""The documentation site: it builds with warnings as errors (``mkdocs build --strict`` through
docs/_site/build.py), its API reference covers every public name, and in a headless Chromium,
opened from disk with the network cut off, every page loads without a console error or a failed
request, the math is typeset by the bundled KaTeX, and every internal link (and its #anchor)
resolves. Skipped when mkdocs-material or mkdocstrings is not installed; the browser part is
skipped without Chromium (CI sets REFCFG_REQUIRE_BROWSER=1, which turns that skip into a failure)."""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

import refcfg

from _browser import NEEDS_BROWSER, chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
for _mod in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
    pytest.importorskip(_mod, reason="the site needs mkdocs, mkdocs-material, mkdocstrings[python]")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built strictly into a temporary folder (the coarse interactive page: seconds)."""
    out = tmp_path_factory.mktemp("site")
    # its own cache of the interactive page: builds at once (another checkout, a developer's) never
    # share a file being written (the vendor tarballs stay in build/site-vendor/, written atomically)
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        REFCFG_SITE_CACHE=str(tmp_path_factory.mktemp("site-cache")),
    )
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "_site" / "build.py"), "--fast", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-6000:]
    print(f"site built in {time.perf_counter() - t0:.1f} s")
    return out


def test_build_is_strict_and_complete(site):
    """--strict ran (a warning would have failed the build, see build.py), and the site holds every
    page of docs/, the generated pages, KaTeX and no reference to a CDN."""
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files

    pages = [
        f.src_uri for f in get_files(load_config(str(ROOT / "mkdocs.yml"))).documentation_pages()
    ]
    assert len(pages) >= 20 and "derivation.md" in pages, pages
    for src_uri in pages:  # every page of docs/ but those mkdocs.yml excludes
        assert (site / src_uri).with_suffix(".html").is_file(), f"{src_uri} was not built"
    for name in (
        "readme.html",
        "interactive.html",
        "interactive-page.html",
        "assets/katex/katex.min.js",
        "assets/katex/katex.min.css",
        "assets/katex/contrib/auto-render.min.js",
    ):
        assert (site / name).is_file(), name
    assert list((site / "assets" / "katex" / "fonts").glob("*.woff2")), "KaTeX fonts missing"
    cdn = re.compile(
        r"""(src|href)\s*=\s*["'](https?:)?//[^"']*(cdn|jsdelivr|unpkg|googleapis|gstatic|"""
        r"""cloudflare|mathjax|katex)""",
        re.I,
    )
    for html in site.rglob("*.html"):
        m = cdn.search(html.read_text(encoding="utf-8"))
        assert m is None, f"{html.relative_to(site)} loads {m.group(0)}"


def _public_packages():
    """refcfg and each of its subpackages (the CLI's commands excepted: the CLI documents them)."""
    out = [refcfg]
    for info in pkgutil.iter_modules(refcfg.__path__):
        if info.ispkg and info.name != "commands" and not info.name.startswith("_"):
            out.append(importlib.import_module(f"refcfg.{info.name}"))
    return out


def _entries(pkg, name):
    """The reference entries (heading ids) that document ``pkg.name``, any of which will do: the
    name itself, or, for a class or function, where it is defined. A re-exported function that has
    the name of a submodule (``refcfg.learn.compare``) is rendered by mkdocstrings as the module:
    there only the function's own entry counts."""
    own = f"{pkg.__name__}.{name}"
    obj = getattr(pkg, name) if hasattr(pkg, name) else importlib.import_module(own)
    if inspect.ismodule(obj):
        return {own, obj.__name__}
    where = (
        {f"{obj.__module__}.{obj.__qualname__}"}
        if (inspect.isclass(obj) or inspect.isfunction(obj))
        else set()
    )
    if where and importlib.util.find_spec(own) is not None:  # shadowed by a submodule
        return where
    return {own} | where


def test_reference_covers_every_public_name(site):
    """Every name of ``refcfg.__all__`` and of each subpackage's ``__all__`` has its own entry (the
    heading id mkdocstrings gives it) in the API reference; a subpackage without ``__all__`` has
    each of its public modules documented."""
    ids = set()
    for html in (site / "reference").glob("*.html"):
        ids |= set(re.findall(r'id="(refcfg[\w.]*)"', html.read_text(encoding="utf-8")))
    assert ids, "no API reference entries"
    missing, checked = [], 0
    for pkg in _public_packages():
        names = getattr(pkg, "__all__", None)
        if names is None:
            names = [
                m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")
            ]
            assert names, f"{pkg.__name__} has neither __all__ nor public modules"
        for name in names:
            checked += 1
            if not _entries(pkg, name) & ids:
                missing.append(f"{pkg.__name__}.{name}")
    assert not missing, f"not in the API reference: {missing}"
    assert checked >= 100, checked
    # the docstrings' Sphinx roles (:class:`X`) are shown as code, not as ":class:" text
    roles = {
        html.name: m.group(0)
        for html in (site / "reference").glob("*.html")
        for m in [
            re.search(r":(class|func|meth|mod|attr|data|obj|exc):\W", html.read_text("utf-8"))
        ]
        if m
    }
    assert not roles, roles


# -------------------------------------------------------------------------------------- browser


class Browser:
    """Chromium driven through the DevTools protocol on a pipe (--remote-debugging-pipe: commands
    on fd 3, replies and events on fd 4, each a JSON text ended by a NUL byte)."""

    def __init__(self, profile: Path):
        assert chromium() is not None, "REFCFG_REQUIRE_BROWSER=1 but no Chromium on the PATH"
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()

        # the browser reads fd 3 and writes fd 4: the child moves the pipe ends there, copying them
        # above 9 first (os.pipe() may have returned 3 or 4 itself), and marks them inheritable
        # (every other descriptor of this process is closed on exec)
        def child():
            r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        cmd = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--allow-file-access-from-files",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            cmd,
            preexec_fn=child,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        # no network: every request that is not a file of the site fails (and is reported)
        self.call(
            "Network.emulateNetworkConditions",
            session=True,
            offline=True,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )

    def _read(self, deadline):
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from Chromium")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=False, timeout=60, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method, timeout=60):
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            ev = self._read(deadline)
            if ev.get("method") == method:
                return ev
            self.events.append(ev)

    def evaluate(self, expression):
        res = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 -- closing a browser that may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


def _errors(events):
    """Console errors, uncaught exceptions and failed requests among DevTools events."""
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"uncaught: {d.get('exception', {}).get('description') or d.get('text')}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(
                "console.error: "
                + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
            )
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"request failed: {p.get('errorText')} ({p.get('requestId')})")
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                out.append(f"network request: {url}")
    return out


PAGE_SCRIPT = r"""(async () => {
  await new Promise(r => setTimeout(r, 50));        // material's document$ and KaTeX have run
  await document.fonts.ready;                       // the fonts the page uses are loaded (or failed)
  const ids = Array.from(document.querySelectorAll('[id]'), e => e.id);
  const names = Array.from(document.querySelectorAll('a[name]'), e => e.name);
  return {
    title: document.title,
    links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
    frames: Array.from(document.querySelectorAll('iframe[src]'), f => f.src),
    brokenImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
                    .map(i => i.src),
    ids: ids.concat(names),
    mathSpans: document.querySelectorAll('.arithmatex').length,
    katex: document.querySelectorAll('.arithmatex .katex').length,
    katexErrors: Array.from(document.querySelectorAll('.katex-error'), e => e.title || e.textContent),
    rawMath: Array.from(document.querySelectorAll('.arithmatex'))
               .filter(e => !e.querySelector('.katex')).map(e => e.textContent.slice(0, 80)),
    strayMath: (() => {      // TeX left in the text: math the Markdown did not see as math
      const out = [], walk = document.createTreeWalker(document.querySelector('article') ||
                                                        document.body, NodeFilter.SHOW_TEXT);
      for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        if (n.parentElement.closest('pre, code, .arithmatex, .katex, script, style')) continue;
        if (/\$|\\(alpha|beta|frac|nabla|mathcal|log)\b/.test(n.textContent))
          out.push(n.textContent.trim().slice(0, 80));
      }
      return out; })(),
    mathFont: (() => { const e = document.querySelector('.katex .mathnormal');
                       return e ? getComputedStyle(e).fontFamily : null; })(),
    mathFontLoaded: Array.from(document.fonts).some(
      f => f.family.replace(/["']/g, '') === 'KaTeX_Math' && f.status === 'loaded'),
  };
})()"""


def _load(browser, url):
    """Load URL; return what PAGE_SCRIPT reads of the page and the errors it raised."""
    browser.events.clear()
    browser.call("Page.navigate", session=True, url=url)
    browser.wait_for("Page.loadEventFired")
    info = browser.evaluate(PAGE_SCRIPT)
    browser.call("Runtime.evaluate", session=True, expression="0")  # collect late events
    return info, _errors(browser.events)


CONTROL_PAGE = """<!doctype html><html><head><title>control</title>
<script src="no-such-script.js"></script>
<script src="https://cdn.example.org/lib.js"></script></head>
<style>@font-face { font-family: KaTeX_Math; src: url(no-such-font.woff2) format("woff2"); }
.mathnormal { font-family: KaTeX_Math; }</style>
<body><p>costs $5, or \\alpha</p><p><span class="arithmatex">\\(x^2\\)</span></p><img src="no-such-image.png">
<p><span class="katex"><span class="mathnormal">x</span></span></p>
<script>console.error("logged error"); undefinedFunction();</script></body></html>"""


@NEEDS_BROWSER
def test_browser_checks_catch_a_broken_page(tmp_path):
    """The control: a page with an uncaught exception, a console error, a missing script and image,
    a request to another host, untypeset math and a KaTeX font that does not load is reported on
    each count (so a clean crawl means something)."""
    page = tmp_path / "control.html"
    page.write_text(CONTROL_PAGE, encoding="utf-8")
    browser = Browser(tmp_path / "profile")
    try:
        info, errors = _load(browser, page.as_uri())
    finally:
        browser.close()
    text = "\n".join(errors)
    assert "uncaught: ReferenceError: undefinedFunction is not defined" in text, text
    assert "console.error: logged error" in text, text
    assert re.search(r"request failed: net::ERR_FILE_NOT_FOUND", text), text
    assert "network request: https://cdn.example.org/lib.js" in text, text
    assert [Path(urlparse(u).path).name for u in info["brokenImages"]] == ["no-such-image.png"]
    assert info["mathSpans"] == 1 and info["katex"] == 0 and info["rawMath"] == ["\\(x^2\\)"]
    assert info["strayMath"] == ["costs $5, or \\alpha"], info["strayMath"]
    # the font is named by the CSS but its file is missing: the font check sees it did not load
    assert "KaTeX_Math" in info["mathFont"] and info["mathFontLoaded"] is False, info["mathFont"]
    assert "no-such-font.woff2" in text, text


def test_link_check_catches_a_missing_file_and_a_missing_anchor(tmp_path):
    """The control of the link check (no browser needed): the same function the crawl's links go
    through reports a link to a missing file and one to a missing #anchor, and passes good ones."""
    (tmp_path / "a.html").write_text("x")
    base = tmp_path.resolve().as_uri() + "/"
    pages = {base + "a.html": {"ids": ["here"]}}
    links = [
        (base + "a.html", base + "a.html#here"),
        (base + "a.html", base + "b.html"),
        (base + "a.html", base + "a.html#gone"),
        (base + "a.html", base + "a.html"),
    ]
    bad = _bad_links(links, pages)
    assert bad == [
        f"{base}a.html -> {base}b.html: no such file",
        f"{base}a.html -> {base}a.html#gone: no element #gone",
    ], bad


@pytest.fixture(scope="module")
def crawl(site, tmp_path_factory):
    """Every page reachable from index.html by internal links, loaded in Chromium from disk."""
    browser = Browser(tmp_path_factory.mktemp("chromium-profile"))
    base = site.resolve().as_uri() + "/"
    pages, errors, links = {}, {}, []
    queue, seen = deque([base + "index.html"]), {base + "index.html"}
    t0 = time.perf_counter()
    try:
        while queue:
            url = queue.popleft()
            pages[url], errors[url] = _load(browser, url)
            info = pages[url]
            for target in info["links"] + info["frames"]:
                if not target.startswith(base):
                    continue
                links.append((url, target))
                doc = urldefrag(target)[0]
                if doc.endswith(".html") and doc not in seen:
                    seen.add(doc)
                    queue.append(doc)
    finally:
        browser.close()
    print(f"browser: {len(pages)} pages in {time.perf_counter() - t0:.1f} s")
    return {"base": base, "pages": pages, "errors": errors, "links": links}


@NEEDS_BROWSER
def test_every_page_loads_without_errors(site, crawl):
    bad = {url: errs for url, errs in crawl["errors"].items() if errs}
    assert not bad, json.dumps(bad, indent=1)[:6000]
    broken = {
        url: info["brokenImages"] for url, info in crawl["pages"].items() if info["brokenImages"]
    }
    assert not broken, broken
    # the crawl reached every page the site has (404.html is shown only by a server)
    built = {
        p.resolve().as_uri()
        for p in site.rglob("*.html")
        if p.name != "404.html" and "_repo" not in p.parts
    }
    unreached = sorted(built - set(crawl["pages"]))
    assert not unreached, f"pages no link leads to: {unreached}"


@NEEDS_BROWSER
def test_internal_links_resolve(site, crawl):
    """Each link to a file of the site names an existing file, and its #anchor an element id of the
    target page (anchors into pages the crawl loaded; other files need only exist)."""
    bad = _bad_links(crawl["links"], crawl["pages"])
    assert len(crawl["links"]) > 500, len(crawl["links"])
    assert not bad, "\n".join(bad[:50])


def _bad_links(links, pages) -> list[str]:
    """The links (source, target) whose target file does not exist, or whose #anchor is not an
    element id of the target page (when the crawl loaded it)."""
    bad = []
    for src, target in links:
        doc, frag = urldefrag(target)
        path = Path(unquote(urlparse(doc).path))
        if not path.exists():
            bad.append(f"{src} -> {target}: no such file")
        elif frag and doc in pages and unquote(frag) not in pages[doc]["ids"]:
            bad.append(f"{src} -> {target}: no element #{frag}")
    return bad


@NEEDS_BROWSER
def test_math_is_typeset_by_the_bundled_katex(crawl):
    """Every math span of every page is typeset by KaTeX (none left raw, no KaTeX error), in KaTeX's
    own fonts, and no page shows TeX outside math (a $ or a \\alpha in its text, outside code);
    at least one page has math, so this cannot pass vacuously."""
    pages = crawl["pages"]
    stray = {u: i["strayMath"] for u, i in pages.items() if i["strayMath"]}
    assert not stray, json.dumps(stray, indent=1)[:4000]
    with_math = {u: i for u, i in pages.items() if i["mathSpans"]}
    assert with_math, "no page has math"
    for url, info in with_math.items():
        assert not info["katexErrors"], (url, info["katexErrors"][:5])
        assert not info["rawMath"], (url, info["rawMath"][:5])
        assert info["katex"] == info["mathSpans"], (url, info["katex"], info["mathSpans"])
        assert info["mathFont"] and "KaTeX_Math" in info["mathFont"], (url, info["mathFont"])
        assert info["mathFontLoaded"], (url, "KaTeX_Math is named but its font file did not load")


SEARCH_SCRIPT = """(async () => {
  const input = document.querySelector('.md-search__input');
  input.focus();
  input.value = QUERY;
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new KeyboardEvent('keyup', {bubbles: true, key: 'r'}));
  for (let k = 0; k < 100; k++) {
    await new Promise(r => setTimeout(r, 100));
    const items = document.querySelectorAll('.md-search-result__item');
    if (items.length) return {n: items.length,
                              meta: document.querySelector('.md-search-result__meta').textContent};
  }
  return {n: 0, meta: null};
})()"""


@NEEDS_BROWSER
def test_search_works_from_disk(site, tmp_path):
    """The search box finds pages with the site opened from disk and no network (the offline
    plugin's inlined index and the bundled iframe-worker polyfill)."""
    browser = Browser(tmp_path / "profile")
    try:
        _, errors = _load(browser, (site / "index.html").resolve().as_uri())
        # the control first (before any result is shown): a word no page has finds nothing, so
        # that the results below are the index answering the query
        none = browser.evaluate(SEARCH_SCRIPT.replace("QUERY", json.dumps("zqxjvwk")))
        found = browser.evaluate(SEARCH_SCRIPT.replace("QUERY", json.dumps("classifier")))
        errors += _errors(browser.events)
    finally:
        browser.close()
    assert not errors, errors
    assert found["n"] > 0 and re.match(r"\d+ matching documents", found["meta"]), found
    assert none["n"] == 0, none
