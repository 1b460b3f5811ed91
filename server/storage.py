"""The media root: the one folder every stage and worker reads and writes media under.

Why a seam: a job worker on another machine sees the same files under another mount point, and a
data dir moved (or restored) elsewhere must keep serving its streams. So the database stores media
paths *relative* to the media root (``media/<collection>/<asset>/source.mp4``) and each user
resolves them here at use; nothing outside this module joins a stored path to a folder.

Local disk (or a network filesystem mounted on every machine) only. What an object-store backend
would need instead is written down in the README ("Scaling out").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath


class MediaRoot:
    """Stored paths ⇄ files. A stored path is POSIX-relative to the root; an absolute one (a row
    written before paths were relative, pointing outside the root) is used as it stands."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    @property
    def sessions_dir(self) -> Path:
        return self.root / "sessions"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    def path(self, stored: str | os.PathLike[str]) -> Path:
        """The file a stored path names (absolute: taken as it is)."""
        p = Path(stored)
        return p if p.is_absolute() else self.root.joinpath(*PurePosixPath(str(stored)).parts)

    def maybe(self, stored: str | None) -> Path | None:
        return None if not stored else self.path(stored)

    def rel(self, path: str | os.PathLike[str]) -> str:
        """What to store for ``path``: relative to the root (POSIX separators) when it lies under
        it, else the absolute path unchanged (such a file is simply not movable with the root)."""
        p = Path(os.path.abspath(path))
        for root in (Path(os.path.abspath(self.root)), Path(os.path.realpath(self.root))):
            if p.is_relative_to(root):
                return p.relative_to(root).as_posix()
        real = Path(os.path.realpath(p))
        root = Path(os.path.realpath(self.root))
        return real.relative_to(root).as_posix() if real.is_relative_to(root) else str(p)

    def asset_dir(self, collection_id: str, asset_id: str) -> Path:
        return self.media_dir / collection_id / asset_id

    def replace(self, src: Path, dest: Path) -> None:
        """Move a finished file into place (atomic on one filesystem; a copy across them)."""
        try:
            os.replace(src, dest)
        except OSError as exc:
            if exc.errno != 18:  # EXDEV: staging on another filesystem than the media root
                raise
            shutil.move(str(src), str(dest))

    def remove_tree(self, folder: Path) -> int:
        """Delete a folder under the root; the bytes it held (0 if it was not there)."""
        if not folder.exists():
            return 0
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        return size


def free_bytes(path: Path) -> int:
    """Free space on the file system that holds ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def headroom(path: Path, floor_mb: float) -> int:
    """Bytes above the floor (negative: below it)."""
    return free_bytes(path) - int(floor_mb * 1024 * 1024)
