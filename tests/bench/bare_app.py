"""The baseline for api_roundtrip.py: litestar handlers that return a constant, served the same way."""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, get, post

SESSION = {"session_id": "cap-1", "collection_id": "c-1", "end_user_id": "u", "client_id": None,
           "status": "created", "callback_url": None, "metadata": {}, "channels": [],
           "primary_video_channel_id": None, "export_status": None, "exported_video_id": None,
           "rtstreams": []}


@get("/collection/{cid:str}/capture/session/{sid:str}", sync_to_thread=False)
def get_session(cid: str, sid: str) -> dict:
    return {"success": True, "data": {**SESSION, "id": sid}}


@post("/collection/{cid:str}/capture/session", sync_to_thread=False, status_code=200)
def create_session(cid: str) -> dict:
    return {"success": True, "data": SESSION}


if __name__ == "__main__":
    app = Litestar([get_session, create_session])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
