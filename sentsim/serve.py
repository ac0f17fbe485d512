"""The HTTP service for chatbots: the FAQ bot, pair similarity and embeddings over JSON (FastAPI).

Endpoints (the schema is published at ``/openapi.json``, readable at ``/docs``):

- ``POST /v1/ask`` ``{"question": ..., "alternatives": 3}``: the FAQ bot's :class:`~sentsim.faq.Answer`.
- ``POST /v1/similarity`` ``{"sentence1": ..., "sentence2": ..., "metric": "cosine"}``: score, threshold, verdict.
- ``POST /v1/embed`` ``{"texts": [...]}``: L2-normalised embeddings.
- ``GET /healthz``: status, FAQ size, when and from where it was loaded, the last reload error.

Every error is JSON ``{"error": {"type": ..., "message": one line}}``: 400 for a bad query (empty, only spaces) or a
body that is not JSON, 404 / 405 for an unknown path or method, 413 for a text, a batch or a body over the limits,
415 for a POST that is not ``application/json``, 422 for a body of the wrong shape (the message names the field),
500 for anything unexpected (logged, never a traceback in the response).

With ``faq_path``, the FAQ file is watched: at most every ``reload_interval_s`` seconds a question checks its
modification time and size, and a changed file is read into a new bot (with the old bot's threshold and margin) that
replaces the old one whole. A broken file leaves the old bot answering, logs one warning and shows in ``/healthz``.

FastAPI and uvicorn are optional: ``pip install 'sentsim[serve]'``.

Example:
    >>> from sentsim.serve import build_app, run
    >>> app = build_app(None, faq_path="faq.csv")  # doctest: +SKIP
    >>> run(app, port=8000)  # doctest: +SKIP
"""

import ipaddress
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from sentsim.batching import MicroBatcher
from sentsim.errors import ConfigError, SentsimError, TextTooLongError, check_text
from sentsim.faq import MAX_QUERY_CHARS, FAQBot, QueryError, default_faq_path

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from sentsim.model import SiameseModel

logger = logging.getLogger("sentsim.serve")

__all__ = ["build_app", "run", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 1 << 20  # the least body cap; raised to fit max_batch texts of max_text_chars when they need more
_MISSING = "sentsim serve needs FastAPI and uvicorn: pip install 'sentsim[serve]'"
_POST_PATHS = ("/v1/ask", "/v1/similarity", "/v1/embed")
_ERROR_TYPES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
}


def _import_fastapi() -> Any:
    try:
        import fastapi
        import pydantic  # noqa: F401
    except ImportError:
        raise ConfigError(_MISSING) from None
    return fastapi


def _one_line(text: Any, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _error_body(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind or _ERROR_TYPES.get(status, "error"), "message": _one_line(message)}}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _model_name(model: Any) -> str:
    config = getattr(model, "config", None)
    base = getattr(config, "base_model", None)
    encoder = getattr(config, "encoder", None) or "model"
    if base and getattr(config, "training", None):
        return f"{encoder} fine-tuned from {base}"
    return base or encoder


# ------------------------------------------------------------------------------------------------ the FAQ holder
class _FAQState:
    """The bot being served, and the watch on its FAQ file. Readers take ``bot`` once per request; a reload builds
    the new bot fully before it replaces the reference under the lock."""

    def __init__(
        self, bot: FAQBot, source: str | None, watch: bool, interval: float, faq_kwargs: dict[str, Any]
    ) -> None:
        self.bot = bot
        self.source = source
        self.watch = watch and source is not None
        self.interval = max(0.0, float(interval))
        self.faq_kwargs = dict(faq_kwargs)
        self.loaded_at = _now()
        self.last_reload_error: str | None = None
        self._lock = threading.Lock()  # guards the swap of bot, loaded_at, last_reload_error
        self._reloading = threading.Lock()  # one reload at a time; other requests keep the old bot meanwhile
        self._checked = time.monotonic()
        self._seen = self._signature() if self.watch else None  # the file version last tried (read or failed)

    def _signature(self) -> tuple[int, int] | str:
        try:
            st = os.stat(self.source)  # type: ignore[arg-type]
        except OSError as exc:
            return f"cannot read the file ({exc.strerror or exc.__class__.__name__})"
        return (st.st_mtime_ns, st.st_size)

    def maybe_reload(self) -> None:
        """Reload the FAQ when its file changed, at most once every ``interval`` seconds. Never raises."""
        if not self.watch or time.monotonic() - self._checked < self.interval:
            return
        if not self._reloading.acquire(blocking=False):
            return  # another request is reloading; this one is answered by the current bot
        try:
            self._checked = time.monotonic()
            sig = self._signature()
            if sig == self._seen:
                return
            self._seen = sig
            self._reload(sig)
        finally:
            self._reloading.release()

    def _reload(self, sig: tuple[int, int] | str) -> None:
        old = self.bot
        started = time.perf_counter()
        try:
            if isinstance(sig, str):
                raise SentsimError(f"{self.source}: {sig}")
            kwargs = {**self.faq_kwargs, "threshold": old.threshold, "margin": old.margin, "gap_weight": old.gap_weight}
            new = FAQBot.from_file(self.source, model=old.model, **kwargs)
        except Exception as exc:  # a broken file must never take the service down
            why = _one_line(exc if isinstance(exc, SentsimError) else f"{self.source}: {exc.__class__.__name__}: {exc}")
            with self._lock:
                self.last_reload_error = why
            logger.warning("could not reload the FAQ, still serving the previous one (%d questions): %s", len(old), why)
            return
        with self._lock:
            self.bot = new
            self.loaded_at = _now()
            self.last_reload_error = None
        logger.info(
            "reloaded the FAQ from %s: %d questions (%.1f s)", self.source, len(new), time.perf_counter() - started
        )

    def health(self) -> dict[str, Any]:
        with self._lock:
            bot, loaded_at, error = self.bot, self.loaded_at, self.last_reload_error
        return {
            "faq_entries": len(bot.entries),
            "faq_answers": bot.n_answers,
            "faq_loaded_at": loaded_at,
            "faq_source": self.source,
            "last_reload_error": error,
        }


# ------------------------------------------------------------------------------------------------ ASGI guard
class _Guard:
    """Outermost of our layers: refuses a POST that is not JSON (415) or whose body is over the byte cap (413, from
    Content-Length before reading, or while reading a chunked body), and turns any unexpected exception into a 500
    JSON error (logged with its traceback, which never goes to the client)."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def _reply(self, send: Any, status: int, message: str, kind: str | None = None) -> None:
        import json

        body = json.dumps(_error_body(status, message, kind), separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 413:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if scope["method"] == "POST" and scope["path"] in _POST_PATHS:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                media = headers.get("content-type", "").split(";")[0].strip().lower()
                if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
                    got = f", not {media}" if media else " (the request has no Content-Type)"
                    await self._reply(send, 415, f"the body must be application/json{got}")
                    return
                length = headers.get("content-length")
                if length is not None and length.strip().isdigit() and int(length) > self.max_body:
                    await self._reply(send, 413, f"the body has {int(length)} bytes, over the limit of {self.max_body}")
                    return
                body = bytearray()
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > self.max_body:
                        await self._reply(send, 413, f"the body is over the limit of {self.max_body} bytes")
                        return
                replayed = False

                async def replay() -> Any:
                    nonlocal replayed
                    if not replayed:
                        replayed = True
                        return {"type": "http.request", "body": bytes(body), "more_body": False}
                    return await receive()

                await self.app(scope, replay, tracked_send)
            else:
                await self.app(scope, receive, tracked_send)
        except Exception:
            logger.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # the response is under way: all the server can do is close the connection
            await self._reply(send, 500, "an unexpected error occurred on the server; it is in the server log")


def _validation_message(errors: list[dict[str, Any]]) -> tuple[int, str, str]:
    """(status, type, one-line message) for FastAPI's validation errors."""
    if not errors:
        return 422, "validation_error", "the request body is not valid"
    first = errors[0]
    if first.get("type") == "json_invalid":
        loc = first.get("loc", ())
        where = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        why = (first.get("ctx") or {}).get("error", "JSON decode error")
        return 400, "invalid_json", f"the body is not valid JSON{where}: {why}"
    parts = []
    for err in errors[:3]:
        loc = [p for p in err.get("loc", ()) if p != "body"]
        field = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
        msg = err.get("msg", "invalid")
        if not field and err.get("type") == "missing":
            parts.append("the body is empty; send a JSON object")
        elif not field:
            parts.append("the body must be a JSON object with the fields of this endpoint")
        else:
            parts.append(f"{field}: {msg}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "validation_error", "; ".join(parts) + more


# ------------------------------------------------------------------------------------------------ the app
def build_app(
    bot: FAQBot | None,
    model: "SiameseModel | None" = None,
    faq_path: str | os.PathLike | None = None,
    *,
    max_text_chars: int = 2000,
    max_batch: int = 256,
    reload_interval_s: float = 2.0,
    faq_kwargs: dict[str, Any] | None = None,
    max_body_bytes: int | None = None,
    model_name: str | None = None,
    ask_batch: int = 32,
) -> "FastAPI":
    """The FastAPI app of the service.

    Args:
        bot: The FAQ bot to serve. None: built from ``faq_path`` (``FAQBot.from_file(faq_path, model=model,
            **faq_kwargs)``), or from the FAQ that ships with sentsim when ``faq_path`` is None too.
        model: The model of ``/v1/similarity`` and ``/v1/embed``; the bot's model when None (the bundled model when
            there is no bot either).
        faq_path: The FAQ file to watch for changes (and to read when ``bot`` is None). With ``bot`` given, the bot
            is served as it is until the file changes.
        max_text_chars: The longest question, sentence or text taken (413 beyond); questions are also held to
            :data:`sentsim.faq.MAX_QUERY_CHARS`.
        max_batch: The most texts one ``/v1/embed`` call takes (413 beyond).
        reload_interval_s: The least time between two checks of ``faq_path`` (0: every question checks).
        faq_kwargs: Passed to :meth:`FAQBot.from_file` (``columns``, ``on_duplicate``, ``threshold``, ``margin``,
            ``index``, ...); reloads keep the serving bot's threshold and margin.
        max_body_bytes: The largest request body (413 beyond, before it is parsed); by default 1 MiB, or more when
            ``max_batch`` texts of ``max_text_chars`` escaped characters need more.
        model_name: How ``/v1/embed`` and ``/healthz`` name the model; from the model's config when None.
        ask_batch: The most ``/v1/ask`` questions answered by one batched call: questions that arrive while one
            batch is computed are embedded and searched together in the next (see :mod:`sentsim.batching`); a
            lone question never waits. 1 answers every question on its own.

    Raises:
        ConfigError: FastAPI is not installed, or a limit is not positive.
        DataError: ``bot`` is None and ``faq_path`` is missing or broken.
    """
    _import_fastapi()
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from sentsim import __version__

    if max_text_chars < 1 or max_batch < 1 or ask_batch < 1:
        raise ConfigError(
            f"max_text_chars, max_batch and ask_batch must be at least 1, not {max_text_chars}, {max_batch} and "
            f"{ask_batch}"
        )
    if reload_interval_s < 0:
        raise ConfigError(f"reload_interval_s must be >= 0, not {reload_interval_s}")
    needed = max(MAX_BODY_BYTES, 6 * max_text_chars * max_batch + 65_536)  # JSON escapes a character to 6 bytes
    body_cap = needed if max_body_bytes is None else int(max_body_bytes)
    if body_cap < 1:
        raise ConfigError(f"max_body_bytes must be at least 1, not {max_body_bytes}")
    faq_kwargs = dict(faq_kwargs or {})
    source = os.fspath(faq_path) if faq_path is not None else None
    if bot is None:
        if model is None:
            from sentsim.encoders import load

            model = load()
        bot = FAQBot.from_file(source, model=model, **faq_kwargs)  # None: sentsim's own FAQ, calibrated
        if source is None:
            source = str(default_faq_path())  # served, not watched
    if model is None:
        model = bot.model
    name = model_name or _model_name(model)
    state = _FAQState(bot, source, faq_path is not None, reload_interval_s, faq_kwargs)
    question_limit = min(max_text_chars, MAX_QUERY_CHARS)

    # ---------------------------------------------------------------- schemas
    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class AskRequest(_Strict):
        """A question for the FAQ bot."""

        question: str = Field(
            description=f"The user's question, at most {question_limit} characters.",
            examples=["How do I reset my password?"],
        )
        alternatives: int = Field(
            3, ge=0, le=10, description="How many other candidate answers to return, for 'did you mean ...?'."
        )

    class AlternativeOut(BaseModel):
        """Another candidate answer."""

        question: str = Field(description="The FAQ question that matched.")
        answer: str = Field(description="Its answer.")
        score: float = Field(description="Cosine similarity of the query with that question.")
        id: str = Field(description="The id of the FAQ entry.")

    class AskResponse(BaseModel):
        """The bot's answer; ``answer`` is null when it is not confident."""

        query: str = Field(description="The question asked, stripped.")
        answer: str | None = Field(description="The answer, or null when the bot should not answer.")
        score: float = Field(description="Cosine similarity of the best-matching FAQ question.")
        confident: bool = Field(description="The confidence reaches the threshold and the answer is not ambiguous.")
        question: str = Field(description="The FAQ question that matched best (also when not confident).")
        id: str = Field(description="The id of the best match's FAQ entry.")
        reason: str = Field(description="answered, below_threshold or ambiguous.", examples=["answered"])
        alternatives: list[AlternativeOut] = Field(description="The next best matches, one per other answer.")
        threshold: float = Field(description="The lowest confidence the bot answers at.")
        margin: float = Field(description="The least gap between the best two answers' scores.")
        gap_weight: float = Field(0.0, description="How much the best score's lead over the next answer counts.")
        confidence: float = Field(
            description="What the threshold is held against: score + gap_weight * (score - the next answer's score)."
        )

        model_config = ConfigDict(
            json_schema_extra={
                "examples": [
                    {
                        "query": "I forgot my password",
                        "answer": "Use the 'Forgot password' link on the sign-in page.",
                        "score": 0.81,
                        "confident": True,
                        "question": "How do I reset my password?",
                        "id": "entry-1",
                        "reason": "answered",
                        "alternatives": [],
                        "threshold": 0.5,
                        "margin": 0.0,
                        "gap_weight": 0.0,
                        "confidence": 0.81,
                    }
                ]
            }
        )

    class SimilarityRequest(_Strict):
        """Two sentences to compare."""

        sentence1: str = Field(description="The first sentence.", examples=["A man plays a guitar."])
        sentence2: str = Field(description="The second sentence.", examples=["Someone is playing a guitar."])
        metric: Literal["cosine", "euclidean", "manhattan", "dot"] | None = Field(
            None, description="cosine, euclidean, manhattan or dot; the model's default metric when null."
        )

    class SimilarityResponse(BaseModel):
        """How alike the two sentences are (higher is more alike) and whether they mean the same."""

        score: float = Field(description="The similarity; distances are mapped to 1 / (1 + distance).")
        metric: str = Field(description="The metric used.", examples=["cosine"])
        threshold: float | None = Field(description="The model's decision threshold for the metric, or null.")
        same: bool | None = Field(description="score >= threshold; null when the model has no threshold.")

    class EmbedRequest(_Strict):
        """Texts to embed."""

        texts: list[str] = Field(
            min_length=1,
            description=f"One to {max_batch} texts, each at most {max_text_chars} characters.",
            examples=[["A man plays a guitar.", "Someone is playing a guitar."]],
        )

    class EmbedResponse(BaseModel):
        """L2-normalised embeddings, one row per text, in order."""

        embeddings: list[list[float]] = Field(description="One unit-length vector per text.")
        dimension: int = Field(description="The length of each vector.", examples=[384])
        model: str = Field(description="The model that embedded them.")

    class HealthResponse(BaseModel):
        """The service is up; what it serves."""

        status: str = Field(description="Always ok when the service answers.", examples=["ok"])
        faq_entries: int = Field(description="FAQ questions served.")
        faq_answers: int = Field(description="Distinct answers among them.")
        faq_loaded_at: str = Field(description="When the FAQ being served was loaded (ISO 8601, UTC).")
        faq_source: str | None = Field(description="The FAQ file watched for changes, or null.")
        last_reload_error: str | None = Field(description="Why the last reload failed, or null.")
        version: str = Field(description="The sentsim version.")
        model: str = Field(description="The model of /v1/similarity and /v1/embed.")

    class ErrorDetail(BaseModel):
        type: str = Field(description="A short code: bad_request, invalid_query, invalid_json, too_large, ...")
        message: str = Field(description="One line saying what is wrong.")

    class ErrorResponse(BaseModel):
        """Every error has this shape."""

        error: ErrorDetail

    def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
        words = {
            400: "An empty or only-spaces text, or a body that is not valid JSON.",
            413: "A text, a batch or the body over the limits.",
            415: "The body is not application/json.",
            422: "The JSON has the wrong shape; the message names the field.",
        }
        return {c: {"model": ErrorResponse, "description": words[c]} for c in codes}

    # ---------------------------------------------------------------- app
    def _answer_batch(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """One batched ask per distinct ``alternatives`` value, against the bot being served now."""
        current = state.bot
        out: list[dict[str, Any]] = [{}] * len(items)
        wanted: dict[int, list[int]] = defaultdict(list)
        for i, (_, k) in enumerate(items):
            wanted[k].append(i)
        for k, rows in wanted.items():
            for i, answer in zip(rows, current.ask_many([items[i][0] for i in rows], alternatives=k)):
                out[i] = answer.to_dict()
        return out

    batcher = MicroBatcher(_answer_batch, max_batch=ask_batch, name="sentsim-ask")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(
        title="sentsim",
        version=__version__,
        description="Semantic sentence similarity: an FAQ bot, pair similarity and embeddings.",
        lifespan=lifespan,
    )
    app.state.sentsim = state
    app.state.ask_batcher = batcher
    app.state.max_body_bytes = body_cap

    def _error(status: int, message: str, kind: str | None = None) -> Any:
        return JSONResponse(_error_body(status, message, kind), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> Any:
        status, kind, message = _validation_message(list(exc.errors()))
        return _error(status, message, kind)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> Any:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = f"no such path: {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        response = _error(exc.status_code, message)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(QueryError)
    async def _on_query(request: Request, exc: QueryError) -> Any:
        return _error(400, f"question: {exc}", "invalid_query")

    @app.exception_handler(SentsimError)
    async def _on_sentsim(request: Request, exc: SentsimError) -> Any:
        return _error(400, str(exc))

    class _TooLarge(Exception):
        def __init__(self, message: str) -> None:
            self.message = message

    @app.exception_handler(_TooLarge)
    async def _on_too_large(request: Request, exc: _TooLarge) -> Any:
        return _error(413, exc.message)

    @app.exception_handler(TextTooLongError)
    async def _on_text_too_long(request: Request, exc: TextTooLongError) -> Any:
        return _error(413, str(exc))

    def _check_text(text: str, field: str) -> str:
        return check_text(text, field, max_text_chars)

    # ---------------------------------------------------------------- endpoints
    @app.post(
        "/v1/ask",
        response_model=AskResponse,
        responses=_responses(400, 413, 415, 422),
        summary="Answer a question from the FAQ",
        tags=["faq"],
    )
    def ask(request: AskRequest) -> Any:
        """The answer of the nearest FAQ question, or ``answer: null`` when the bot is not confident."""
        if len(request.question) > question_limit:
            raise _TooLarge(f"question has {len(request.question)} characters, over the limit of {question_limit}")
        FAQBot.check_query(request.question)  # a bad question fails alone, before it joins a batch
        state.maybe_reload()
        return batcher.submit((request.question, request.alternatives))

    @app.post(
        "/v1/similarity",
        response_model=SimilarityResponse,
        responses=_responses(400, 413, 415, 422),
        summary="Score how alike two sentences are",
        tags=["similarity"],
    )
    def similarity(request: SimilarityRequest) -> Any:
        """The similarity of the pair and, against the model's threshold, whether they mean the same."""
        a = _check_text(request.sentence1, "sentence1")
        b = _check_text(request.sentence2, "sentence2")
        metric = request.metric or model.metric
        threshold = model.config.threshold_for(metric)
        score = float(model.similarity(a, b, metric))
        return {
            "score": score,
            "metric": metric,
            "threshold": threshold,
            "same": None if threshold is None else score >= threshold,
        }

    @app.post(
        "/v1/embed",
        response_model=EmbedResponse,
        responses=_responses(400, 413, 415, 422),
        summary="Embed texts",
        tags=["similarity"],
    )
    def embed(request: EmbedRequest) -> Any:
        """One L2-normalised embedding per text."""
        if len(request.texts) > max_batch:
            raise _TooLarge(f"texts has {len(request.texts)} items, over the limit of {max_batch}")
        texts = [_check_text(t, f"texts[{i}]") for i, t in enumerate(request.texts)]
        emb = model.encode(texts)
        return {"embeddings": emb.tolist(), "dimension": int(emb.shape[1]), "model": name}

    @app.get("/healthz", response_model=HealthResponse, summary="Health and what is served", tags=["service"])
    def healthz() -> Any:
        """Always 200 while the service runs; ``last_reload_error`` says when the FAQ file could not be reloaded."""
        return {"status": "ok", **state.health(), "version": __version__, "model": name}

    app.add_middleware(_Guard, max_body=body_cap)
    return app


# ------------------------------------------------------------------------------------------------ running
def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve ``app`` with uvicorn until interrupted (Ctrl-C or SIGTERM).

    Binds the loopback address unless told otherwise; another address (``0.0.0.0`` to take requests from other
    machines) logs a warning, since the service has no authentication.
    """
    try:
        import uvicorn
    except ImportError:
        raise ConfigError(_MISSING) from None
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be a number from 0 to 65535, not {port!r}")
    if not _is_loopback(host):
        logger.warning(
            "serving on %s: reachable from other machines, with no authentication; put it behind a proxy you trust",
            host,
        )
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    logger.info("sentsim serve on http://%s:%d (API docs at /docs)", shown, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
