"""Scene collections, screen-text scene indexes and frame images (SDK: ``extract_scenes``,
``get_scene_collection``, ``list_scene_collection``, ``delete_scene_collection``, ``index_scenes``,
``index_visuals``, ``list_scene_index``, ``get_scene_index``, ``delete_scene_index``,
``Scene.describe``, ``Frame.describe``, ``get_scenes``). Search is in ``routes/spoken.py``."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Request, delete, get, post
from litestar.response import File

from ..auth import Principal
from ..errors import BadRequest, NotFound, Unavailable
from ..jobs import JobQueue
from ..links import Links
from ..scenes import Scenes
from ..settings import Settings
from ..views.jobs import Presenters, answer_job
from ..views.scenes import collection_summary, scene_collection
from .unavailable import scene_index_feature, unavailable_message

V = "/video/{media_id:str}"


class ExtractBody(msgspec.Struct):
    #: the SDK sends ``shot`` / ``time``
    extraction_type: Literal["shot", "time", "shot_based", "time_based", ""] | None = "shot_based"
    extraction_config: dict[str, Any] | None = None
    force: bool | None = False
    callback_url: str | None = None


class DescribeBody(msgspec.Struct):
    """``describe(prompt, model_name, model_config)``: accepted; the description is the text read."""

    prompt: str | None = None
    model_name: str | None = None
    model_config: dict[str, Any] | None = None


class GivenScene(msgspec.Struct):
    """A scene described by the caller (``index_scenes(scenes=[...])``): indexed as given."""

    start: float
    end: float
    description: str | None = None


class SceneIndexBody(msgspec.Struct):
    extraction_type: Literal["shot", "time", "shot_based", "time_based", "", "transcript"] | None = None
    extraction_config: dict[str, Any] | None = None
    prompt: str | None = None
    metadata: dict[str, Any] | None = None
    model_name: str | None = None
    model_config: dict[str, Any] | None = None
    name: str | None = None
    scenes: list[GivenScene] | None = None
    callback_url: str | None = None
    sandbox_id: str | None = None
    language_code: str | None = None


@post(f"{V}/scenes", status_code=200)
async def extract_scenes(media_id: str, data: ExtractBody, request: Request, scenes: Scenes, jobs: JobQueue,
                         presenters: Presenters, settings: Settings, links: Links, key: Principal) -> dict[str, Any]:
    """``extract_scenes()``: a new scene collection (a job; the SDK waits for its answer)."""
    job_id = await scenes.extract(media_id, data.extraction_type, data.extraction_config)
    return await answer_job(jobs, presenters, settings, links, request, job_id)


@get(f"{V}/scenes")
async def list_scene_collections(media_id: str, scenes: Scenes, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": {"scene_collections": [collection_summary(c)
                                                            for c in await scenes.collections(media_id)]}}


@get(f"{V}/scenes/{{scene_collection_id:str}}")
async def get_scene_collection(media_id: str, scene_collection_id: str, request: Request, scenes: Scenes,
                               links: Links, key: Principal) -> dict[str, Any]:
    found = await scenes.collection(media_id, scene_collection_id)
    return {"success": True, "data": {"scene_collection": scene_collection(found, links, links.base_url(request))}}


@delete(f"{V}/scenes/{{scene_collection_id:str}}", status_code=200)
async def delete_scene_collection(media_id: str, scene_collection_id: str, scenes: Scenes,
                                  key: Principal) -> dict[str, Any]:
    await scenes.delete_collection(media_id, scene_collection_id)
    return {"success": True}


@post(f"{V}/index/scene", status_code=200)  # index_audio (a prompt over a transcript): 501, documented
async def index_scenes(media_id: str, data: SceneIndexBody, request: Request, scenes: Scenes, jobs: JobQueue,
                       presenters: Presenters, settings: Settings, links: Links, key: Principal) -> dict[str, Any]:
    """``index_scenes()`` / ``index_visuals()``: a screen-text scene index (a job with progress; a
    request while one runs on this video is answered by that one). ``index_audio()`` (a transcript
    described by a prompt) needs a language model: 400 naming it."""
    if data.extraction_type == "transcript":  # index_audio(): a prompt over transcript segments
        raise Unavailable(unavailable_message(scene_index_feature({"extraction_type": "transcript",
                                                                   "prompt": data.prompt or "?"})))
    job_id = await scenes.start_index(media_id, {
        "extraction_type": data.extraction_type, "extraction_config": data.extraction_config, "prompt": data.prompt,
        "model_name": data.model_name, "name": data.name,
        "scenes": None if data.scenes is None else [msgspec.structs.asdict(scene) for scene in data.scenes]})
    return await answer_job(jobs, presenters, settings, links, request, job_id)


@get(f"{V}/index")
async def get_scenes(media_id: str, scenes: Scenes, key: Principal,
                     index_type: Literal["scene"] = "scene") -> dict[str, Any]:
    """``get_scenes()`` (deprecated in the SDK): the records of the video's latest scene index."""
    if index_type != "scene":
        raise BadRequest("index_type must be scene")
    made = [i for i in await scenes.indexes(media_id) if i["status"] == "done"]
    if not made:
        return {"success": True, "data": []}
    found = await scenes.records(media_id, made[-1]["scene_index_id"])
    return {"success": True, "data": found["scene_index_records"]}


@get(f"{V}/index/scene")
async def list_scene_indexes(media_id: str, scenes: Scenes, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": {"scene_indexes": await scenes.indexes(media_id)}}


@get(f"{V}/index/scene/{{scene_index_id:str}}")
async def get_scene_index(media_id: str, scene_index_id: str, scenes: Scenes, key: Principal) -> dict[str, Any]:
    return {"success": True, "data": await scenes.records(media_id, scene_index_id)}


@delete(f"{V}/index/scene/{{scene_index_id:str}}", status_code=200)
async def delete_scene_index(media_id: str, scene_index_id: str, scenes: Scenes, key: Principal) -> dict[str, Any]:
    await scenes.delete_index(media_id, scene_index_id)
    return {"success": True}


@post(f"{V}/scene/{{scene_id:str}}/describe", status_code=200)
async def describe_scene(media_id: str, scene_id: str, scenes: Scenes, key: Principal,
                         data: DescribeBody | None = None) -> dict[str, Any]:
    """``Scene.describe()``: the text on the scene's frames (OCR), kept as its description."""
    return {"success": True, "data": await scenes.describe(media_id, scene_id, None)}


@post(f"{V}/frame/{{frame_id:str}}/describe", status_code=200)
async def describe_frame(media_id: str, frame_id: str, scenes: Scenes, key: Principal,
                         data: DescribeBody | None = None) -> dict[str, Any]:
    """``Frame.describe()``: the text on the frame (OCR), kept as its description."""
    return {"success": True, "data": await scenes.describe(media_id, None, frame_id)}


@get("/frames/{token:str}", opt={"head": True})  # HEAD answered as GET without a body (guard.py)
async def serve_frame(token: str, scenes: Scenes, links: Links) -> File:
    """A scene frame's image: its link is signed (``Frame.url``), no key needed."""
    frame_id = links.check("frame", token.removesuffix(".jpg"))
    path = await scenes.frame_file(frame_id) if frame_id else None
    if path is None:
        raise NotFound("This link is invalid or has expired")
    return File(path=path, filename=path.name, content_disposition_type="inline", media_type="image/jpeg")


handlers = [get_scenes, extract_scenes, list_scene_collections, get_scene_collection, delete_scene_collection, index_scenes,
            list_scene_indexes, get_scene_index, delete_scene_index, describe_scene, describe_frame, serve_frame]
