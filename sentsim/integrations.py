"""Use a sentsim model where other libraries expect an embedding model.

:class:`SentsimEmbeddings` is a LangChain embeddings adapter: it has LangChain's ``Embeddings`` interface
(``embed_documents``, ``embed_query`` and their async forms) and works without LangChain installed. When
``langchain_core`` can be imported, the class is a real subclass of ``langchain_core.embeddings.Embeddings``, so
``isinstance`` checks, pydantic-validated fields and type checkers all accept it; LangChain is never a dependency
of sentsim.

Example:
    >>> from sentsim.integrations import SentsimEmbeddings
    >>> emb = SentsimEmbeddings()                      # the bundled model, offline
    >>> vectors = emb.embed_documents(["How do I reset my password?", "Where are my invoices?"])
    >>> len(vectors), len(vectors[0])
    (2, 384)
    >>> query = emb.embed_query("I forgot my password")
    >>> scores = [sum(q * v for q, v in zip(query, vec)) for vec in vectors]   # unit vectors: dot is cosine
    >>> scores[0] > scores[1]
    True

With LangChain (``pip install langchain-core``)::

    from langchain_core.vectorstores import InMemoryVectorStore
    store = InMemoryVectorStore(embedding=SentsimEmbeddings("runs/my-model"))
    store.add_texts(["How do I reset my password?", "Where are my invoices?"])
    store.similarity_search("I forgot my password", k=1)
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentsim.errors import ConfigError, DataError, check_text
from sentsim.model import SiameseModel

logger = logging.getLogger(__name__)

__all__ = ["SentsimEmbeddings", "HAS_LANGCHAIN", "MAX_TEXT_CHARS"]

MAX_TEXT_CHARS = 100_000  # far past any encoder's token limit: a text this long is a mistake, not a document

# The base class: LangChain's Embeddings when langchain_core imports, else object. Type checkers always see
# Embeddings (so passing an adapter where LangChain wants Embeddings type-checks); where langchain_core is not
# installed they see an unresolved import, which the ignore below turns into Any.
if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings as _Base  # type: ignore[import-not-found, unused-ignore]

    HAS_LANGCHAIN: bool
else:
    try:
        from langchain_core.embeddings import Embeddings as _Base
    except ImportError:
        _Base = object
    HAS_LANGCHAIN = _Base is not object


def _check_text(text: Any, where: str) -> str:
    return check_text(text, where, MAX_TEXT_CHARS, error=ConfigError, too_long=DataError, allow_empty=True)


class SentsimEmbeddings(_Base):
    """LangChain-compatible embeddings over a :class:`~sentsim.SiameseModel`.

    Args:
        model: A :class:`~sentsim.SiameseModel`, a model folder (or hub id) for :func:`sentsim.load`, or None for
            the bundled all-MiniLM-L6-v2.
        batch_size: Texts per forward pass.
        normalize: L2-normalise the vectors (default), as :meth:`SiameseModel.encode` does, so that dot product
            equals cosine similarity. False returns the encoder's output as it is (still unit length when the
            model ends in a ``Normalize`` module, as the bundled model does).

    Raises:
        ConfigError: ``model`` is not a model, a path or None; ``batch_size`` is not a positive integer.
        ModelError: the folder is not a usable model (from :func:`sentsim.load`).

    The methods take a list of strings (``embed_documents``) or one string (``embed_query``) and return plain
    Python floats. A string passed as the list, a non-string item or an empty list is a :class:`ConfigError`
    naming the item; a text over :data:`MAX_TEXT_CHARS` characters a :class:`DataError`. Both are ``ValueError``.

    Example:
        >>> from sentsim.integrations import SentsimEmbeddings
        >>> emb = SentsimEmbeddings()
        >>> len(emb.embed_query("A man plays a guitar."))
        384
    """

    def __init__(
        self,
        model: SiameseModel | str | os.PathLike | None = None,
        batch_size: int = 32,
        normalize: bool = True,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, not {batch_size!r}")
        if model is None or isinstance(model, str | os.PathLike):
            from sentsim.encoders import load

            model = load(model)
        elif not isinstance(model, SiameseModel):
            raise ConfigError(
                f"model must be a SiameseModel, a model folder or None (the bundled model), not {type(model).__name__}"
            )
        self.model = model
        self.batch_size = batch_size
        self.normalize = bool(normalize)

    @property
    def dimension(self) -> int:
        """The length of every vector."""
        return self.model.dimension

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if self.normalize:
            emb = self.model.encode(texts, batch_size=self.batch_size)
        else:
            emb = self.model.encoder.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=False
            )
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), -1).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed a list of texts: one vector (a list of floats) per text, in order."""
        if isinstance(texts, str):
            raise ConfigError("embed_documents takes a list of texts, not one string (use embed_query)")
        if not isinstance(texts, Sequence):
            raise ConfigError(f"embed_documents takes a list of texts, not {type(texts).__name__}")
        if not texts:
            raise ConfigError("embed_documents got an empty list of texts")
        checked = [_check_text(text, f"texts[{i}]") for i, text in enumerate(texts)]
        return self._encode(checked)

    def embed_query(self, text: str) -> list[float]:
        """Embed one text: a vector (a list of floats). The same vector ``embed_documents([text])`` gives."""
        return self._encode([_check_text(text, "the query")])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """:meth:`embed_documents` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """:meth:`embed_query` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.embed_query, text)

    def __repr__(self) -> str:
        return f"SentsimEmbeddings({self.model!r}, batch_size={self.batch_size}, normalize={self.normalize})"
