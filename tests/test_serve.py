"""The HTTP service (sentsim.serve): endpoints, JSON errors, limits, hot reload of the FAQ file, the real server."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from sentsim import FAQBot  # noqa: E402
from sentsim.errors import ConfigError  # noqa: E402
from sentsim.serve import build_app, run  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PASSWORD = "Use the 'Forgot password' link on the sign-in page."
INVOICES = "Invoices are under Billing > History."
CANCEL = "Go to Settings > Plan and choose Cancel."
SUPPORT = "Write to support@example.com; we answer within a day."
PAIRS = [
    ("How do I reset my password?", PASSWORD),
    ("I can't log in because I forgot my password", PASSWORD),
    ("Where can I download my invoices?", INVOICES),
    ("How do I cancel my subscription?", CANCEL),
]
GOOD_ASK = {"question": "I forgot my password, how can I reset it?"}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def bot(bundled):
    return FAQBot.from_pairs(PAIRS, model=bundled, threshold=0.5)


@pytest.fixture(scope="module")
def app(bot):
    return build_app(bot)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def serve_log():
    """Records of the "sentsim.serve" logger, caught on the logger itself (the CLI may stop propagation)."""
    records: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("sentsim.serve")
    handler, level = _Keep(logging.DEBUG), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield records
    log.removeHandler(handler)
    log.setLevel(level)


def assert_error(response, status: int, kind: str | None = None, says: str | None = None) -> str:
    """The response is the JSON error shape with a one-line message; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message and "\n" not in message and "Traceback" not in message
    if kind is not None:
        assert body["error"]["type"] == kind, body
    if says is not None:
        assert says in message, message
    return message


def assert_still_works(client) -> None:
    r = client.post("/v1/ask", json=GOOD_ASK)
    assert r.status_code == 200 and r.json()["answer"] == PASSWORD, r.text


# ------------------------------------------------------------------------------------------------ good paths
def test_ask_answers_a_paraphrase_with_the_right_answer(client):
    r = client.post("/v1/ask", json={**GOOD_ASK, "alternatives": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] == PASSWORD and body["confident"] is True and body["reason"] == "answered"
    assert body["query"] == GOOD_ASK["question"] and body["question"] in (PAIRS[0][0], PAIRS[1][0])
    assert body["score"] >= body["threshold"] == 0.5
    assert [a["answer"] for a in body["alternatives"]] and len(body["alternatives"]) == 2
    assert PASSWORD not in [a["answer"] for a in body["alternatives"]]  # one per other answer
    assert set(body["alternatives"][0]) == {"question", "answer", "score", "id"}


def test_ask_abstains_on_an_unrelated_question(client):
    r = client.post("/v1/ask", json={"question": "What's the weather like on Mars today?", "alternatives": 0})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answer"] is None and body["confident"] is False and body["reason"] == "below_threshold"
    assert body["score"] < 0.5 and body["alternatives"] == []


def test_ask_matches_the_library(client, bot):
    question = "Where are my invoices?"
    assert client.post("/v1/ask", json={"question": question}).json() == json.loads(
        json.dumps(bot.ask(question).to_dict())
    )


def test_similarity_ranks_a_paraphrase_above_an_unrelated_pair(client, bundled):
    para = client.post(
        "/v1/similarity", json={"sentence1": "A man plays a guitar.", "sentence2": "Someone is playing a guitar."}
    )
    other = client.post(
        "/v1/similarity", json={"sentence1": "A man plays a guitar.", "sentence2": "Stocks fell sharply today."}
    )
    assert para.status_code == other.status_code == 200, (para.text, other.text)
    p, o = para.json(), other.json()
    assert set(p) == {"score", "metric", "threshold", "same"}
    assert p["metric"] == bundled.metric and p["threshold"] == pytest.approx(bundled.config.threshold_for(p["metric"]))
    assert p["score"] > o["score"] and p["same"] is True and o["same"] is False
    assert p["score"] == pytest.approx(
        bundled.similarity("A man plays a guitar.", "Someone is playing a guitar."), abs=1e-5
    )
    euclid = client.post(
        "/v1/similarity",
        json={"sentence1": "A man plays a guitar.", "sentence2": "Stocks fell.", "metric": "euclidean"},
    ).json()
    assert euclid["metric"] == "euclidean" and 0 < euclid["score"] <= 1


def test_embed_returns_unit_vectors_matching_encode(client, bundled):
    texts = ["A man plays a guitar.", "Ein Mann spielt Gitarre.", "Stocks fell sharply today."]
    r = client.post("/v1/embed", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    emb = np.asarray(body["embeddings"], dtype=np.float32)
    assert body["dimension"] == bundled.dimension and emb.shape == (3, bundled.dimension)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(emb, bundled.encode(texts), atol=1e-5)
    assert "MiniLM" in body["model"]


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    import sentsim

    assert body["status"] == "ok" and body["version"] == sentsim.__version__
    assert body["faq_entries"] == 4 and body["faq_answers"] == 3
    assert body["faq_source"] is None and body["last_reload_error"] is None
    assert body["faq_loaded_at"][:4].isdigit() and "T" in body["faq_loaded_at"]


def test_openapi_documents_the_four_endpoints(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    import sentsim

    assert spec["info"]["title"] == "sentsim" and spec["info"]["version"] == sentsim.__version__
    assert {"/v1/ask", "/v1/similarity", "/v1/embed", "/healthz"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    for path, name, fields in [
        ("/v1/ask", "AskRequest", {"question", "alternatives"}),
        ("/v1/similarity", "SimilarityRequest", {"sentence1", "sentence2", "metric"}),
        ("/v1/embed", "EmbedRequest", {"texts"}),
    ]:
        op = spec["paths"][path]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + name)
        assert set(schemas[name]["properties"]) == fields
        assert all(prop.get("description") for prop in schemas[name]["properties"].values())
        assert {"200", "400", "413", "415", "422"} <= set(op["responses"])
        assert op["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert schemas["AskRequest"]["required"] == ["question"]
    assert schemas["AskRequest"]["properties"]["alternatives"]["maximum"] == 10
    assert "get" in spec["paths"]["/healthz"]
    assert client.get("/docs").status_code == 200


# ------------------------------------------------------------------------------------------------ bad input
BAD = [
    # (id, path, request kwargs, status, type, a word the message holds)
    ("missing field", "/v1/ask", {"json": {"alternatives": 2}}, 422, "validation_error", "question"),
    ("wrong type", "/v1/ask", {"json": {"question": 5}}, 422, "validation_error", "question"),
    ("too many alternatives", "/v1/ask", {"json": {**GOOD_ASK, "alternatives": 11}}, 422, None, "alternatives"),
    ("unknown field", "/v1/ask", {"json": {**GOOD_ASK, "k": 3}}, 422, "validation_error", "k"),
    ("not an object", "/v1/ask", {"json": ["a question"]}, 422, "validation_error", "body"),
    ("empty body", "/v1/ask", {"content": b"", "headers": JSON}, 422, None, "empty"),
    ("bad metric", "/v1/similarity", {"json": {"sentence1": "a", "sentence2": "b", "metric": "l2"}}, 422, None, "metr"),
    ("wrong item type", "/v1/embed", {"json": {"texts": ["a", 3]}}, 422, "validation_error", "texts[1]"),
    ("empty batch", "/v1/embed", {"json": {"texts": []}}, 422, "validation_error", "texts"),
    ("invalid JSON", "/v1/ask", {"content": b'{"question": "hi"', "headers": JSON}, 400, "invalid_json", "JSON"),
    ("text/plain", "/v1/ask", {"content": b"hi", "headers": {"content-type": "text/plain"}}, 415, None, "text/plain"),
    ("form", "/v1/ask", {"data": {"question": "hello"}}, 415, "unsupported_media_type", "x-www-form-urlencoded"),
    ("no content type", "/v1/embed", {"content": json.dumps({"texts": ["a"]}).encode()}, 415, None, "no Content"),
    ("empty question", "/v1/ask", {"json": {"question": ""}}, 400, "invalid_query", "empty"),
    ("spaces question", "/v1/ask", {"json": {"question": "  \t \n "}}, 400, "invalid_query", "only spaces"),
    ("spaces sentence", "/v1/similarity", {"json": {"sentence1": "a", "sentence2": "   "}}, 400, None, "sentence2"),
    ("empty text", "/v1/embed", {"json": {"texts": ["a", ""]}}, 400, None, "texts[1]"),
    ("1 MB question", "/v1/ask", {"json": {"question": "why " * 250_000}}, 413, "too_large", "question"),
    ("long sentence", "/v1/similarity", {"json": {"sentence1": "a" * 2001, "sentence2": "b"}}, 413, None, "sentence1"),
    ("long text", "/v1/embed", {"json": {"texts": ["a", "b" * 2001]}}, 413, None, "texts[1]"),
    ("batch over the cap", "/v1/embed", {"json": {"texts": ["a"] * 257}}, 413, "too_large", "257"),
]  # fmt: skip


@pytest.mark.parametrize("path, kwargs, status, kind, says", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_request_gets_a_json_error_and_the_service_goes_on(client, path, kwargs, status, kind, says):
    assert_error(client.post(path, **kwargs), status, kind, says)
    assert_still_works(client)


def test_a_body_over_the_byte_cap_is_refused_before_parsing(client, app):
    cap = app.state.max_body_bytes
    assert cap >= 1 << 20
    body = b'{"texts": ["' + b"a" * cap + b'"]}'
    assert_error(client.post("/v1/embed", content=body, headers={"content-type": "application/json"}), 413, "too_large")
    assert_still_works(client)

    def chunks():  # no Content-Length: counted while read
        yield b'{"question": "'
        for _ in range(cap // 65_536 + 1):
            yield b"x" * 65_536
        yield b'"}'

    assert_error(client.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"}), 413)
    assert_still_works(client)


def test_unknown_path_and_method_are_json_errors(client):
    assert_error(client.get("/nope"), 404, "not_found", "/nope")
    assert_error(client.post("/v1/nope", json={}), 404, "not_found")
    assert_error(client.get("/v1/ask"), 405, "method_not_allowed")
    assert_error(client.post("/healthz", json={}), 405)
    assert_still_works(client)


def test_an_unexpected_error_is_a_logged_500_without_traceback(client, bot, monkeypatch, serve_log):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internal detail\nline two")

    monkeypatch.setattr(bot, "ask_many", boom)
    r = client.post("/v1/ask", json=GOOD_ASK)
    message = assert_error(r, 500, "internal_error")
    assert "secret" not in message
    assert any(rec.levelno == logging.ERROR and rec.exc_info for rec in serve_log)
    monkeypatch.undo()
    assert_still_works(client)


def test_a_text_limit_below_the_query_limit(bot):
    with TestClient(build_app(bot, max_text_chars=10, max_batch=2)) as small:
        assert_error(small.post("/v1/ask", json={"question": "x" * 11}), 413, says="limit of 10")
        assert_error(small.post("/v1/embed", json={"texts": ["a", "b", "c"]}), 413, says="limit of 2")
        assert small.post("/v1/embed", json={"texts": ["a", "b"]}).status_code == 200


def test_without_a_bot_or_a_file_it_serves_the_bundled_faq(bundled):
    from sentsim.faq import default_faq_path

    client = TestClient(build_app(None, model=bundled))
    health = client.get("/healthz").json()
    assert health["faq_source"] == str(default_faq_path()) and health["faq_entries"] > 10
    reply = client.post("/v1/ask", json={"question": "How do I install sentsim?"}).json()
    assert reply["id"] == "install" and reply["confident"]  # calibrated on the shipped queries, not the 0.78 default
    assert reply["threshold"] < 0.7


def test_missing_fastapi_is_a_config_error(bot, monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ConfigError, match=r"pip install 'sentsim\[serve\]'"):
        build_app(bot)


# ------------------------------------------------------------------------------------------------ hot reload
def _write(path, rows, bump: int) -> None:
    path.write_text("question,answer\n" + "".join(f'"{q}","{a}"\n' for q, a in rows), encoding="utf-8")
    st = path.stat()  # a later mtime even on a coarse-grained file system
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def test_hot_reload_serves_the_new_faq_and_keeps_the_old_on_a_broken_file(tmp_path, bundled, serve_log):
    faq = tmp_path / "faq.csv"
    rows = [(q, a) for q, a in PAIRS if a != CANCEL]
    _write(faq, rows, 0)
    app = build_app(None, model=bundled, faq_path=faq, reload_interval_s=0, faq_kwargs={"threshold": 0.5})
    client = TestClient(app)
    support = {"question": "How can I reach your customer support team?"}
    assert client.post("/v1/ask", json=support).json()["answer"] != SUPPORT
    health = client.get("/healthz").json()
    assert health["faq_entries"] == 3 and health["faq_source"] == str(faq) and health["last_reload_error"] is None
    app.state.sentsim.bot.threshold = 0.45  # as if calibrated: a reload keeps it, and the gap weight
    app.state.sentsim.bot.gap_weight = 0.3

    rows.append(("How do I contact support?", SUPPORT))
    _write(faq, rows, 2)
    r = client.post("/v1/ask", json=support).json()
    assert r["answer"] == SUPPORT and r["threshold"] == 0.45 and r["gap_weight"] == 0.3
    lead = r["score"] - r["alternatives"][0]["score"]
    assert r["confidence"] == pytest.approx(r["score"] + 0.3 * lead, abs=1e-5)
    health = client.get("/healthz").json()
    assert health["faq_entries"] == 4 and health["faq_answers"] == 3 and health["last_reload_error"] is None
    assert not [rec for rec in serve_log if rec.levelno >= logging.WARNING]

    faq.write_text("question\nHow do I reset my password?\n", encoding="utf-8")  # a header with no answer column
    os.utime(faq, ns=(faq.stat().st_atime_ns, faq.stat().st_mtime_ns + 4_000_000_000))
    assert client.post("/v1/ask", json=support).json()["answer"] == SUPPORT  # the old bot still answers
    assert_still_works(client)
    health = client.get("/healthz").json()
    assert health["faq_entries"] == 4 and health["last_reload_error"]
    assert "faq.csv" in health["last_reload_error"] and "\n" not in health["last_reload_error"]
    warnings = [rec for rec in serve_log if rec.levelno == logging.WARNING]
    assert len(warnings) == 1, [w.getMessage() for w in warnings]  # once, not on every request
    assert "reload" in warnings[0].getMessage() and "faq.csv" in warnings[0].getMessage()

    faq.unlink()
    assert_still_works(client)
    assert "cannot read" in client.get("/healthz").json()["last_reload_error"]

    _write(faq, rows[:2], 6)  # fixed: the error clears
    assert client.post("/v1/ask", json=support).json()["answer"] is None
    health = client.get("/healthz").json()
    assert health["faq_entries"] == 2 and health["last_reload_error"] is None


def test_reload_checks_no_more_often_than_the_interval(tmp_path, bundled):
    faq = tmp_path / "faq.csv"
    _write(faq, PAIRS[:2], 0)
    app = build_app(None, model=bundled, faq_path=faq, reload_interval_s=3600, faq_kwargs={"threshold": 0.5})
    client = TestClient(app)
    loaded = client.get("/healthz").json()["faq_loaded_at"]
    _write(faq, PAIRS, 2)
    assert_still_works(client)
    assert client.get("/healthz").json()["faq_entries"] == 2
    app.state.sentsim.interval = 0  # the interval has passed
    assert_still_works(client)
    health = client.get("/healthz").json()
    assert health["faq_entries"] == 4 and health["faq_loaded_at"] >= loaded


# ------------------------------------------------------------------------------------------------ the real server
def test_run_serves_on_loopback(tmp_path):
    port = free_port()
    script = tmp_path / "serve_it.py"
    script.write_text(  # a stub model: this checks run() and uvicorn, not the encoder (and starts in ~2 s)
        textwrap.dedent(
            """
            import sys
            import numpy as np
            import sentsim
            from sentsim.serve import build_app, run

            class Config:
                metric, base_model, encoder, training = "cosine", "stub", "stub", None
                def threshold_for(self, metric):
                    return 0.5

            class Stub:
                config, metric = Config(), "cosine"
                def encode(self, texts, batch_size=32, show_progress_bar=None):
                    return np.ones((len(texts), 4), dtype=np.float32) / 2

            bot = sentsim.FAQBot.from_pairs([("How do I reset my password?", "Use the link.")], Stub(), threshold=0.5)
            run(build_app(bot), port=int(sys.argv[1]), log_level="warning")
            """
        ),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-2000:]
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/ask", json={"question": "reset my password"}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["answer"] == "Use the link.", r.text
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health["status"] == "ok" and health["model"] == "stub"
        assert_error(httpx.get(f"http://127.0.0.1:{port}/nope", timeout=5), 404, "not_found")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGTERM), proc.communicate()[0].decode(errors="replace")[-2000:]


def test_run_warns_off_loopback(monkeypatch, serve_log):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    run("app", port=8123)
    run("app", host="::1", port=8123)
    assert calls[0] == {"host": "127.0.0.1", "port": 8123, "log_level": "info"}
    assert not [r for r in serve_log if r.levelno >= logging.WARNING]
    run("app", host="0.0.0.0", port=8123)
    assert calls[-1]["host"] == "0.0.0.0"
    assert any(r.levelno == logging.WARNING and "0.0.0.0" in r.getMessage() for r in serve_log)
    with pytest.raises(ConfigError, match="port"):
        run("app", port=70000)


def test_concurrent_asks_are_batched_and_each_gets_its_own_answer(bot):
    from concurrent.futures import ThreadPoolExecutor

    questions = ["how do I install sentsim", "what is the capital of France", "can I fine-tune on my own data?"] * 16
    alone = {q: bot.ask(q, alternatives=2).to_dict() for q in set(questions)}
    app = build_app(bot)
    with TestClient(app) as c, ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda q: c.post("/v1/ask", json={"question": q, "alternatives": 2}), questions))
        batcher = app.state.ask_batcher
        assert batcher.items == len(questions) and batcher.batches < len(questions)
    for q, r in zip(questions, replies):
        assert r.status_code == 200
        got, want = r.json(), alone[q]
        assert (got["answer"], got["id"], got["confident"]) == (want["answer"], want["id"], want["confident"])
        assert got["score"] == pytest.approx(want["score"], abs=1e-4)
