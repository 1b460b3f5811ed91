"""Model loading: bundled models offline, and a clear error naming the setting when missing."""

from __future__ import annotations

import pytest

from reeldb.index import models


def test_missing_whisper_model_names_setting(tmp_path):
    with pytest.raises(models.ModelNotFound) as e:
        models.get_whisper(str(tmp_path / "nope"))
    assert e.value.setting == "REELDB_WHISPER_MODEL" and "REELDB_WHISPER_MODEL" in str(e.value)


def test_unknown_whisper_name_is_not_downloaded():
    with pytest.raises(models.ModelNotFound) as e:
        models.get_whisper("reeldb-test/no-such-model")
    assert "REELDB_WHISPER_MODEL" in str(e.value)


def test_missing_embed_model_names_setting(tmp_path):
    with pytest.raises(models.ModelNotFound) as e:
        models.get_embedder(str(tmp_path))
    assert e.value.setting == "REELDB_EMBED_MODEL"


def test_bundled_models_load_once_offline():
    from reeldb.index.embed import embed_texts

    assert models.get_whisper() is models.get_whisper()
    v = embed_texts(["hello world", "good morning"])
    assert v.shape == (2, 384) and v.dtype.name == "float32"
    assert abs(float((v * v).sum(1)[0]) - 1) < 1e-5
