"""``/docs``: the documentation site, built by the server from the installed pages and served with
no network at all (the server and this check run in a network namespace with loopback only), and its
configuration page, generated from the settings object, names every ``REELDB_*`` variable the code reads."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

import reeldb
from reeldb.server.settings import Settings

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
DOCS = TESTS.parent / "docs"
PACKAGE = Path(reeldb.__path__[0])  # the installed package: what the server reads


class Assets(HTMLParser):
    """What a page loads (scripts, stylesheets, icons, images) and the pages it links to."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "source", "iframe") and a.get("src"):
            self.loads.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.loads.append(a["href"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


def nav_pages() -> list[str]:
    """Every page of the site's navigation (docs/mkdocs.yml), as ``name.md``."""
    return re.findall(r":\s*([\w-]+\.md)\s*$", (DOCS / "mkdocs.yml").read_text(), re.M)


def check_site(base: str) -> None:
    """Every page of the navigation answers 200, and everything each loads comes from this server."""
    root = requests.get(f"{base}/docs", timeout=120)
    assert root.status_code == 200 and root.url.endswith("/docs/index.html"), (root.status_code, root.url)
    seen: set[str] = set()
    for page in nav_pages():
        url = f"{base}/docs/{page[:-3]}.html"
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"], url
        parsed = Assets()
        parsed.feed(answer.text)
        assert parsed.loads, url
        for ref in parsed.loads:
            full = urljoin(url, ref)
            assert urlsplit(full).netloc == urlsplit(base).netloc, f"{url} loads {ref} from elsewhere"
            if full not in seen:
                seen.add(full)
                assert requests.get(full, timeout=30).status_code == 200, full
        for ref in parsed.links:  # links between pages stay inside the site
            full = urljoin(url, ref)
            if urlsplit(full).netloc == urlsplit(base).netloc and "/docs/" in full:
                assert requests.head(full.split("#")[0], timeout=30).status_code == 200, f"{url} → {ref}"
    assert requests.get(f"{base}/docs/search/search_index.json", timeout=30).json()["docs"]
    assert requests.get(f"{base}/docs/nothing-here.html", timeout=30).status_code == 404
    assert requests.get(f"{base}/docs/%2e%2e/%2e%2e/reeldb.db", timeout=30).status_code == 404  # never outside


def in_namespace(data_dir: Path) -> None:
    """Run inside ``unshare -n``: a server whose only network is loopback serves the whole site."""
    from support.server_process import NO_INGEST, ServerProcess

    server = ServerProcess(data_dir, env=NO_INGEST).start(timeout=120)
    try:
        check_site(server.url)
    finally:
        server.stop()


def test_docs_are_served_with_no_network(tmp_path):
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise RuntimeError("unshare (util-linux) and ip (iproute2) are needed: tests/run.sh installs them")
    user = [] if os.geteuid() == 0 else ["-r"]  # root needs no user namespace
    code = (f"import sys; sys.path[:0] = [{str(TESTS)!r}, {str(Path(__file__).parent)!r}]; "
            f"import test_docs_site; test_docs_site.in_namespace(__import__('pathlib').Path({str(tmp_path / 'data')!r}))")
    env = {k: v for k, v in os.environ.items() if k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    out = subprocess.run(["unshare", *user, "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                          sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    built = list((tmp_path / "data" / "docs-site").iterdir())
    assert len(built) == 1 and (built[0] / "configuration.html").exists()


def configuration_page_text(server) -> str:
    html = requests.get(f"{server.url}/docs/configuration.html", timeout=120).text
    return re.sub(r"<[^>]+>", "", html)


@pytest.mark.process  # reads the server's log (mkdocs warns there on a broken link)
def test_the_configuration_page_names_every_setting_with_its_default(server):
    text = configuration_page_text(server)
    assert "WARNING mkdocs" not in server.log(), server.log()  # no broken link or anchor in any page
    for field in dataclasses.fields(Settings):
        name = f"REELDB_{field.name.upper()}"
        row = re.search(rf"^{name}\s*$\s*^(.*)$\s*^(.*)$", text, re.M)
        assert row, f"{name} has no row on the configuration page"
        default, effect = row.group(1).strip(), row.group(2).strip()
        expected = "unset" if field.default is None else str(field.default)
        assert default == expected or default.lstrip("./") == expected.lstrip("./") or \
            (isinstance(field.default, bool) and default == str(field.default).lower()) or \
            (isinstance(field.default, float) and float(default) == field.default), (name, default, field.default)
        assert effect, f"{name}: the page says nothing of what it does"


def test_every_variable_the_code_reads_is_on_the_configuration_page(server):
    text = configuration_page_text(server)
    named = set()  # the names written out in the code (the recorder's are read outside the settings)
    for path in PACKAGE.rglob("*.py"):
        # a name ending in "_" is the prefix of names made in code (REELDB_RECORDER_{knob}), each listed
        named |= {name for name in re.findall(r"REELDB_[A-Z0-9_]+", path.read_text()) if not name.endswith("_")}
    assert {"REELDB_CAPTURE_SOURCES", "REELDB_RECORDER_FPS", "REELDB_URL"} <= named  # the scan sees the package
    read = named | {f"REELDB_{field.name.upper()}" for field in dataclasses.fields(Settings)}
    missing = sorted(name for name in read if not re.search(rf"\b{name}\b", text))
    assert not missing, f"read by the code, not on the configuration page: {missing}"
