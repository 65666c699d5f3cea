"""mkdocs hooks of the documentation site (mkdocs.yml ``hooks:``): what the site needs that is not a
file of docs/.

- KaTeX and the search polyfill iframe-worker, fetched once from the npm registry (versions and
  sha512 pinned below, cached under build/site-vendor/, or taken from the folder of tarballs named
  by REFCFG_SITE_VENDOR) and copied into site/assets/: math renders and search works without any
  network access when the site is read, from disk or from a server.
- The interactive page, computed by ``refcfg.plotting.interactive.write_page`` in a subprocess on
  this tree's ``refcfg`` (cached by a hash of the package's sources under build/site-cache/, or the
  folder REFCFG_SITE_CACHE names; REFCFG_SITE_INTERACTIVE=fast computes the coarse test version in
  seconds), plus a page (interactive-page.md) that embeds it.
- Cache files are written under a temporary name and renamed into place (os.replace), so that two
  builds at once never read a half-written file.
- readme.md, the repository's README.md as a page.
- Links that leave docs/ (e.g. ``../README.md``, ``../verification/x.py``) are rewritten: to the
  page when the target is a page of the site, else to a copy of the repository file under _repo/.
- Pages that the nav of mkdocs.yml does not list are appended to it, so that a new page is never
  unreachable: pages in a folder of docs/ form a section named after the folder (its index.md or
  README.md first), pages at the top form a section "More".
- Sphinx roles in docstrings (:class:`X`) are shown as the code X alone.
- In table rows, a "|" inside $...$ math becomes \\vert (it would end the cell).
- Lab notebooks (jupytext markdown, docs/labs/) lose the cell metadata of their code fences
  (```python tags=["solution"] becomes ```python), solution cells are folded into a collapsible
  "Solution" block.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import logging
import os
import posixpath
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.refcfg")

# third-party files of the site, from the npm registry at build time (name, version, sha512 of the
# tarball as npm's "integrity" gives it, files under package/ to copy, folder of the site)
VENDOR = [
    (
        "katex",
        "0.19.1",
        "jG8uKntjSEcm2EpQOh0XturpPuuC9r3Sq5HLHdsFdWZT27E672SF19QEi+of0/YeOy15lDgRhKvr5614uRrEfA==",
        r"dist/(katex\.min\.js|katex\.min\.css|contrib/auto-render\.min\.js|fonts/[^/]+\.woff2)",
        "assets/katex",
    ),
    # the offline plugin's polyfill for the search worker on file:// (mkdocs.yml extra.polyfills
    # names this copy; the plugin would otherwise add a CDN address)
    (
        "iframe-worker",
        "1.0.4",
        "roeaaI+Lg1LJNfgpCjoRe/+WzEjy9+Z08LoEvu85MCPbBjwm+qXz8Ag5U05lHa6V1CysZyGzE0SOkAtSUA5q7Q==",
        r"shim/(index\.js)",
        "assets/iframe-worker",
    ),
]

README_PAGE = "readme.md"
INTERACTIVE_PAGE = "interactive-page.md"
INTERACTIVE_HTML = "interactive.html"
REPO_COPIES = "_repo"

_state: dict = {}


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


# ---------------------------------------------------------------------------------------- nav


def _nav_pages(nav) -> set[str]:
    found = set()
    for item in nav or []:
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            for value in item.values():
                if isinstance(value, str):
                    found.add(value)
                else:
                    found |= _nav_pages(value)
    return found


def _title_of(folder: str) -> str:
    return folder.replace("-", " ").replace("_", " ").capitalize()


def _reference_page(init: Path) -> str:
    """The generated reference page of the subpackage whose __init__.py is INIT. A re-exported name
    that is also a submodule's name (``from .exercises import grade`` next to grade.py) is
    documented by mkdocstrings as the submodule: the object itself gets its own entry."""
    pkg = f"refcfg.{init.parent.name}"
    text = f"# {pkg}\n\n::: {pkg}\n"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                name = alias.asname or alias.name
                if (init.parent / f"{name}.py").exists() and node.module != name:
                    text += (
                        f"\n`{pkg}.{name}` is `{pkg}.{node.module}.{alias.name}` (the module "
                        f"`{pkg}.{name}` is documented above):\n\n"
                        f"::: {pkg}.{node.module}.{alias.name}\n"
                    )
    return text


def on_config(config):
    root = _root(config)
    docs = Path(config.docs_dir)
    _state["root"] = root
    _state["docs"] = docs
    listed = _nav_pages(config.nav)
    sections: dict[str, list[str]] = {}
    for p in sorted(docs.rglob("*.md")):
        rel = p.relative_to(docs).as_posix()
        if rel in listed or rel.startswith("_"):
            continue
        parts = rel.split("/")
        if any(part.startswith((".", "_")) for part in parts):
            continue
        folder = parts[0] if len(parts) > 1 else ""
        # a folder is a section when it is one (an index page, or the labs); other folders hold
        # pages that their parent page links to (e.g. generated tables)
        if (
            folder
            and folder != "labs"
            and not any((docs / folder / n).exists() for n in ("index.md", "README.md"))
        ):
            continue
        sections.setdefault(folder, []).append(rel)
    # a subpackage with an __all__ and no reference page gets a generated one (reference/NAME.md:
    # "::: refcfg.NAME"), listed last in the API reference
    _state["reference"] = {}
    for init in sorted((root / "refcfg").glob("*/__init__.py")):
        name = init.parent.name
        if (
            not name.startswith("_")
            and re.search(r"^__all__\s*=", init.read_text(encoding="utf-8"), re.M)
            and not (docs / "reference" / f"{name}.md").exists()
        ):
            _state["reference"][f"reference/{name}.md"] = _reference_page(init)
    if config.nav is None:
        return config
    nav = list(config.nav)
    for item in nav:
        if isinstance(item, dict) and "API reference" in item:
            item["API reference"] = list(item["API reference"]) + list(_state["reference"])
    for folder, pages in sections.items():
        first = [p for p in pages if posixpath.basename(p) in ("index.md", "README.md")]
        pages = first + [p for p in pages if p not in first]
        entry = {_title_of(folder) if folder else "More": pages}
        # a folder of labs goes after "Learn"; everything else before the API reference
        anchor = "Learn" if folder == "labs" else "API reference"
        keys = [next(iter(item)) if isinstance(item, dict) else None for item in nav]
        at = keys.index(anchor) + (1 if anchor == "Learn" else 0) if anchor in keys else len(nav)
        nav.insert(at, entry)
        log.info("nav: added %s", entry)
    config.nav = nav
    return config


# ---------------------------------------------------------------------------------------- vendor


def _tarball(root: Path, name: str, version: str, sha512: str) -> bytes:
    """The npm tarball NAME-VERSION.tgz: from REFCFG_SITE_VENDOR (a folder of ``npm pack``
    tarballs, for builds without network), else the cache build/site-vendor/, else the registry;
    its sha512 must be the pinned one."""
    fname = f"{name}-{version}.tgz"
    given = os.environ.get("REFCFG_SITE_VENDOR")
    cache = root / "build" / "site-vendor" / fname
    url = f"https://registry.npmjs.org/{name}/-/{fname}"
    if given:
        source = Path(given) / fname
        if not source.is_file():
            raise PluginError(
                f"REFCFG_SITE_VENDOR={given} has no {fname} (npm pack {name}@{version})"
            )
        data = source.read_bytes()
    elif cache.is_file():
        source, data = cache, cache.read_bytes()
    else:
        log.info("fetching %s", url)
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                source, data = url, r.read()
        except OSError as exc:
            raise PluginError(
                f"cannot fetch {url} ({exc}); without network, set REFCFG_SITE_VENDOR "
                f"to a folder holding {fname} (npm pack {name}@{version})"
            ) from None
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != sha512:
        raise PluginError(
            f"{source}: sha512 {digest} is not the pinned {sha512} of {name} {version}"
        )
    if source == url:
        _write_atomic(cache, data)
    return data


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file of the same folder and os.replace: a
    build running at the same time sees the old file, the new one or none, never a partial one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _vendor_files(config) -> list[File]:
    out = []
    for name, version, sha512, pattern, dest in VENDOR:
        wanted = re.compile(rf"^package/{pattern}$")
        data = _tarball(_state["root"], name, version, sha512)
        found = []
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                m = wanted.match(member.name)
                if m and member.isfile():
                    found.append(
                        File.generated(
                            config, f"{dest}/{m.group(1)}", content=tar.extractfile(member).read()
                        )
                    )
        if not found:
            raise PluginError(f"{name} {version}: no file of the tarball matches {pattern}")
        out += found
    return out


# ---------------------------------------------------------------------------------------- interactive


def _interactive_html(root: Path) -> str:
    mode = os.environ.get("REFCFG_SITE_INTERACTIVE", "full")
    if mode not in ("full", "fast"):
        raise PluginError(f"REFCFG_SITE_INTERACTIVE must be 'full' or 'fast', got {mode!r}")
    h = hashlib.sha256(mode.encode())
    for p in sorted((root / "refcfg").rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    folder = Path(os.environ.get("REFCFG_SITE_CACHE") or root / "build" / "site-cache")
    cache = folder / f"interactive-{mode}-{h.hexdigest()[:16]}.html"
    try:
        return cache.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    log.info("computing the interactive page (%s; a few minutes for 'full')", mode)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".interactive-") as work:
        tmp = Path(work) / "page.html"
        code = (
            "import sys, refcfg\nfrom refcfg.plotting import interactive\n"
            "path = refcfg.GMMPath(refcfg.problem('two-class-2d'))\n"
            "interactive.write_page(sys.argv[1], path, 0, fast=sys.argv[2] == 'fast', seed=0, "
            "problem='two-class-2d')\n"
        )
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ),
        )
        res = subprocess.run(
            [sys.executable, "-c", code, str(tmp), mode],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise PluginError(f"the interactive page failed:\n{res.stderr[-3000:]}")
        html = tmp.read_text(encoding="utf-8")
        os.replace(tmp, cache)
    for old in folder.glob(f"interactive-{mode}-*.html"):  # pages of older sources
        if old != cache:
            old.unlink(missing_ok=True)
    return html


INTERACTIVE_TEXT = """# Interactive page

The exact CFG field of the `two-class-2d` problem (class y = 0): move the sliders for the guidance
weight w and the time t, or press *play*, to see the density p_t, the velocity field and particles
integrated with it. The page is computed when the site is built, by the same code as

```bash
refcfg figures --out figures/ --interactive
```

and is one self-contained HTML file (no network): [open it on its own](interactive.html). The
[gallery](gallery.md) explains every figure.

<iframe class="refcfg-interactive" src="interactive.html" title="interactive CFG page"></iframe>
"""


# ---------------------------------------------------------------------------------------- links

# [text](target) and ![alt](target), target without spaces, optional title
_LINK = re.compile(r"(!?\[[^\]\n]*\]\()([^)\s#]+)(#[^)\s]*)?(\s+\"[^\"]*\")?\)")
_SKIP = re.compile(r"^([a-z][a-z0-9+.-]*:|/|#)", re.I)


def _origin(src_uri: str) -> str:
    """The repository path a page's text was written at (its links are relative to it)."""
    return "README.md" if src_uri == README_PAGE else f"docs/{src_uri}"


def _link_targets(text: str, origin: str) -> list[tuple[str, str]]:
    """(target as written, repository path it points to) of each relative link of a page."""
    out = []
    for m in _LINK.finditer(text):
        target = m.group(2)
        if _SKIP.match(target):
            continue
        out.append((target, posixpath.normpath(posixpath.join(posixpath.dirname(origin), target))))
    return out


def _rewrite_links(text: str, src_uri: str) -> str:
    origin = _origin(src_uri)
    root = _state["root"]
    here = posixpath.dirname(src_uri)

    def fix(m):
        target = m.group(2)
        if _SKIP.match(target):
            return m.group(0)
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(origin), target))
        if repo_path.startswith("docs/"):
            site_path = repo_path[len("docs/") :]
        elif repo_path == "README.md":
            site_path = README_PAGE
        elif (root / repo_path).is_file() and not repo_path.startswith(".."):
            site_path = f"{REPO_COPIES}/{repo_path}"
        else:
            return m.group(0)  # left as written: mkdocs reports it
        new = posixpath.relpath(site_path, here or ".")
        if new == target:
            return m.group(0)
        return f"{m.group(1)}{new}{m.group(3) or ''}{m.group(4) or ''})"

    return _LINK.sub(fix, text)


# ---------------------------------------------------------------------------------------- files


def on_files(files, config):
    root = _state["root"]
    for f in _vendor_files(config):
        files.append(f)
    files.append(File.generated(config, INTERACTIVE_HTML, content=_interactive_html(root)))
    files.append(File.generated(config, INTERACTIVE_PAGE, content=INTERACTIVE_TEXT))
    for src_uri, text in _state["reference"].items():
        files.append(File.generated(config, src_uri, content=text))
    readme = root / "README.md"
    files.append(File.generated(config, README_PAGE, content=readme.read_text(encoding="utf-8")))
    # copies of the repository files that pages link to outside docs/
    pages = [(f.src_uri, f.content_string) for f in files.documentation_pages()]
    wanted = set()
    for src_uri, text in pages:
        for _, repo_path in _link_targets(text, _origin(src_uri)):
            if (
                not repo_path.startswith(("docs/", ".."))
                and repo_path != "README.md"
                and (root / repo_path).is_file()
            ):
                wanted.add(repo_path)
    for repo_path in sorted(wanted):
        files.append(
            File.generated(config, f"{REPO_COPIES}/{repo_path}", abs_src_path=str(root / repo_path))
        )
    return files


# ---------------------------------------------------------------------------------------- pages

# a fenced code cell of a jupytext markdown notebook: ```python key=value ... (metadata after the
# language)
_FENCE = re.compile(r"^```(\w+)([ \t]+[^\n`]*)?\n(.*?)^```[ \t]*$", re.M | re.S)


def _lab_cells(text: str) -> str:
    def fix(m):
        lang, meta, body = m.group(1), m.group(2) or "", m.group(3)
        if "solution" in meta:
            inner = "".join(
                "    " + line if line.strip() else line
                for line in f"```{lang}\n{body}```\n".splitlines(True)
            )
            return f'??? success "Solution"\n\n{inner}'
        return f"```{lang}\n{body}```"

    return _FENCE.sub(fix, text)


# an opening fence with words after the language (```python no-run, the docs' marker of examples
# that the docs test does not run): the words are dropped, or the fence would not be code
_FENCE_WORDS = re.compile(r"^([ \t]*```[\w+-]+)[ \t]+[^{\s`][^\n`]*$", re.M)


# a table row, and $...$ math in it: a "|" inside the math (p_t(x|z)) would end the table cell, so
# it becomes \vert (the same symbol)
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$", re.M)
_DOLLAR_MATH = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)(?<!\\)\$")


def _table_math(markdown: str) -> str:
    def row(m):
        return _DOLLAR_MATH.sub(
            lambda k: "$" + k.group(1).replace("|", r"\vert ") + "$", m.group(0)
        )

    return _TABLE_ROW.sub(row, markdown)


def on_page_markdown(markdown, page, config, files):
    src_uri = page.file.src_uri
    if src_uri.startswith("labs/"):
        markdown = _lab_cells(markdown)
    markdown = _FENCE_WORDS.sub(r"\1", markdown)
    markdown = _table_math(markdown)
    return _rewrite_links(markdown, src_uri)


# Sphinx roles in docstrings (:class:`MLP`, :func:`~refcfg.sweep.run`), which Markdown shows as
# ":class:" before the code: the role is dropped, and a "~" keeps the last component only
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):<code>(~?)([^<]*)</code>")


def on_page_content(html, page, config, files):
    return _ROLE.sub(
        lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>",
        html,
    )
