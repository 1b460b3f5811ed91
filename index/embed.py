"""Text to unit-length float32 vectors (sentence-transformers, bundled all-MiniLM-L6-v2).

Why normalised: cosine similarity is then a plain dot product, so search is one matrix-vector
product over the stored matrix. Why float32: half the memory of float64 and what BLAS is fastest
at; the model's precision does not need more.

Blocking and CPU-bound: call from a worker thread.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import models

#: The name an index records for the bundled model's vectors (a setting that names no model).
BUNDLED_NAME = "bundled:all-MiniLM-L6-v2"


def model_name(model_spec: Optional[str] = None) -> str:
    """What an index records as the model that made its vectors: the spec, or the bundled one's name."""
    return model_spec or BUNDLED_NAME


def embed_texts(texts: Sequence[str], *, model_spec: Optional[str] = None, batch_size: int = 64) -> np.ndarray:
    """Vectors of shape (len(texts), dim), float32, each of unit L2 norm (zero rows stay zero)."""
    model = models.get_embedder(model_spec)
    if len(texts) == 0:
        return np.zeros((0, dimension(model_spec)), np.float32)
    vecs = model.encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False,
        show_progress_bar=False,
    )
    return normalise(np.asarray(vecs, dtype=np.float32))


def embed_query(text: str, *, model_spec: Optional[str] = None) -> np.ndarray:
    """One query vector, shape (dim,)."""
    return embed_texts([text], model_spec=model_spec)[0]


def dimension(model_spec: Optional[str] = None) -> int:
    model = models.get_embedder(model_spec)
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def normalise(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, float32 (pure)."""
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=-1, keepdims=True)
    return np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
