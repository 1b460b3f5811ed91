"""``/docs``: the documentation pages (``server/docs.py`` builds them on the first visit)."""

from __future__ import annotations

import mimetypes

from litestar import Response, get
from litestar.response import File, Redirect

from .. import docs
from ..errors import NotFound
from ..runtime import Runtime
from ..settings import Settings

HEAD = {"head": True}


@get("/docs", opt=HEAD, include_in_schema=False)
async def docs_root() -> Redirect:
    return Redirect("/docs/index.html")  # /docs/ is /docs to the router: a page needs its own name


@get("/docs/{path:path}", opt=HEAD, include_in_schema=False)
async def docs_page(path: str, settings: Settings, runtime: Runtime) -> File | Response[bytes]:
    root = (await runtime.io(docs.site, settings.data_dir)).resolve()
    target = (root / path.lstrip("/")).resolve()
    if root not in target.parents or not target.is_file():
        raise NotFound(f"No documentation page {path}")
    media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return File(target, media_type=media_type, content_disposition_type="inline",
                headers={"cache-control": "no-cache"})


handlers = [docs_root, docs_page]
