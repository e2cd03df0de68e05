"""Hybrid retrieval: BM25 (actors/gpts/documents.py, the offline default) and an embedding
model's vectors ranked together, where an operator configures an OpenAI-compatible embeddings
endpoint (ACTORLOG_EMBEDDINGS: a hosted model, or a local server such as one that serves a
sentence-transformers model).

Ingest is the same with or without it: chunks are stored as text (a vector per chunk in the
log would make an upload's event tens of megabytes, and would be wrong after a model change).
Vectors are made when a search first meets a chunk and kept in a bounded cache per host, keyed
by model and text. The two rankings are fused by reciprocal rank (k=60): a chunk that only the
vectors find (a synonym, a paraphrase) still comes up, and BM25's exact matches stay on top.
An embeddings endpoint that fails falls back to BM25 for that search (logged), never a failed
run.
"""

from __future__ import annotations

import collections
import hashlib
import logging
from typing import Any

import numpy as np

from actors.gpts import documents as docs
from actors.gpts.settings import EmbeddingConfig
from runtime.settings import environment

__all__ = ["Embedder", "fuse"]

log = logging.getLogger(__name__)

RRF_K = 60
MAX_CACHED = 50_000  # vectors kept per host (~300 MB at 1,536 float32 dimensions... at most)


class Embedder:
    def __init__(self, config: EmbeddingConfig) -> None:
        import openai

        self.config = config
        self.client = openai.AsyncOpenAI(
            api_key=environment(config.api_key_env) or "not-needed",
            base_url=config.base_url, timeout=config.timeout, max_retries=1)
        self.cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self.requests = 0

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.config.model}\0{text}".encode()).hexdigest()

    async def vectors(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text, from the cache or the endpoint (in batches)."""
        keys = [self._key(t) for t in texts]
        missing = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in self.cache))
        for start in range(0, len(missing), self.config.batch):
            part = missing[start:start + self.config.batch]
            answer = await self.client.embeddings.create(
                model=self.config.model, input=[texts[i] for i in part])
            self.requests += 1
            for item in answer.data:
                vector = np.asarray(item.embedding, dtype=np.float32)
                norm = float(np.linalg.norm(vector)) or 1.0
                self.cache[keys[part[item.index]]] = vector / norm
                while len(self.cache) > MAX_CACHED:
                    self.cache.popitem(last=False)
        for k in keys:
            self.cache.move_to_end(k)
        return np.stack([self.cache[k] for k in keys])

    async def search(self, documents: list[dict[str, Any]], query: str, k: int = 4
                     ) -> list[dict[str, Any]]:
        """The ``k`` best chunks by BM25 and vectors fused; BM25 alone if the endpoint
        fails."""
        if not documents:
            return []
        bm25 = docs.scores(documents, query)
        lexical = [documents[i] for i in sorted(range(len(documents)),
                                                 key=lambda i: (-bm25[i], i)) if bm25[i] > 0]
        try:
            matrix = await self.vectors([d["text"] for d in documents] + [query])
        except Exception as exc:  # noqa: BLE001 - retrieval goes on without vectors
            log.warning("embeddings failed, BM25 only for this search: %s", exc)
            return docs.search(documents, query, k)
        scores = matrix[:-1] @ matrix[-1]
        semantic = [documents[i] for i in np.argsort(-scores, kind="stable")]
        return fuse([lexical, semantic])[:k]


def fuse(rankings: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Reciprocal rank fusion of rankings of the same chunks (by id)."""
    score: dict[str, float] = collections.defaultdict(float)
    by_id: dict[str, dict[str, Any]] = {}
    for ranking in rankings:
        for rank, d in enumerate(ranking):
            key = d.get("id") or d["text"]
            score[key] += 1.0 / (RRF_K + rank + 1)
            by_id.setdefault(key, d)
    return sorted(by_id.values(), key=lambda d: -score[d.get("id") or d["text"]])
