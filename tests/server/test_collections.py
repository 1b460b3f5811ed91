"""Collections through the official SDK."""

from __future__ import annotations

import pytest
from videodb.exceptions import InvalidRequestError


def test_default_collection_exists_and_resolves(conn):
    coll = conn.get_collection()
    assert coll.id.startswith("c-")
    assert coll.name == "Default Collection"
    assert conn.get_collection(coll.id).id == coll.id
    ids = [c.id for c in conn.get_collections()]
    assert ids[0] == coll.id


def test_create_update_publicity_delete(conn):
    coll = conn.create_collection(name="Meetings", description="weekly", is_public=False)
    assert (coll.name, coll.description, coll.is_public) == ("Meetings", "weekly", False)
    renamed = conn.update_collection(coll.id, name="Standups", description="daily")
    assert (renamed.id, renamed.name, renamed.description) == (coll.id, "Standups", "daily")
    coll.make_public()
    assert conn.get_collection(coll.id).is_public is True
    coll.make_private()
    assert conn.get_collection(coll.id).is_public is False
    assert coll.id in [c.id for c in conn.get_collections()]
    coll.delete()
    with pytest.raises(InvalidRequestError, match="Collection not found"):
        conn.get_collection(coll.id)


def test_bad_collection_requests(conn):
    with pytest.raises(InvalidRequestError, match="Collection not found"):
        conn.get_collection("c-unknown")
    with pytest.raises(InvalidRequestError, match="default collection cannot be deleted"):
        conn.get_collection().delete()
    with pytest.raises(InvalidRequestError, match="name must be one line of text, not blank"):
        conn.create_collection(name="  ", description="x")


def test_collection_with_content_is_not_deleted(conn):
    coll = conn.create_collection(name="busy", description="")
    conn.create_capture_session(end_user_id="u", collection_id=coll.id)
    with pytest.raises(InvalidRequestError, match="still holds 0 media and 1 capture sessions"):
        coll.delete()
    assert conn.get_collection(coll.id).id == coll.id
