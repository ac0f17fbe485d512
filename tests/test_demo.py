"""The Gradio demo (sentsim.demo, launched by demo/app.py and `sentsim demo`): every API endpoint through
gradio_client, good and bad input, and the feedback log.

The app is launched once for the module on a free local port with the bundled model; bad input must come back as a
one-line error (gradio_client's AppError) and the app must keep answering good requests.
"""

from __future__ import annotations

import base64
import csv
import json
import multiprocessing
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.conftest import free_port, load_script  # noqa: E402


def _load_app():
    """The demo's code (sentsim.demo); demo/app.py, which is not a package, must re-export it."""
    import sentsim.demo

    launcher = load_script("demo/app.py", "sentsim_demo_app")  # not run as __main__, so it only imports
    assert launcher.build_demo is sentsim.demo.build_demo and launcher.main is sentsim.demo.main
    return sentsim.demo


app = _load_app()

PARAPHRASE = ("A man is playing a guitar.", "Someone is playing a guitar.")
UNRELATED = ("A man is playing a guitar.", "The stock market fell sharply today.")
CORPUS = "\n".join(
    [
        "The cat sleeps on the sofa.",
        "Stock markets fell sharply today.",
        "A man is playing a guitar.",
        "How do I reset my password?",
        "",
        "The weather will be sunny tomorrow.",
    ]
)


@pytest.fixture(scope="module")
def served(bundled, tmp_path_factory):
    """The demo over the bundled model and the shipped FAQ, launched once, with a client."""
    feedback = tmp_path_factory.mktemp("feedback") / "feedback.jsonl"
    downloads = tmp_path_factory.mktemp("downloads")
    demo = app.build_demo(model=bundled, feedback_path=feedback)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False, download_files=str(downloads))
    try:
        yield SimpleNamespace(demo=demo, client=client, feedback=feedback, port=port)
    finally:
        client.close()
        demo.close()


def _error(client: Client, *args, api_name: str) -> str:
    """The one-line message of the error the endpoint gives for ``args``."""
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def _still_serving(client: Client) -> None:
    score, verdict, _, _ = client.predict(*PARAPHRASE, "cosine", api_name="/compare")
    assert verdict == "same meaning" and score > 0.7


# ------------------------------------------------------------------------------------------------ API surface
def test_named_endpoints(served):
    api = served.client.view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/compare", "/ask", "/batch", "/search"}  # page helpers stay private
    params = [p["parameter_name"] for p in api["named_endpoints"]["/batch"]["parameters"]]
    assert params == ["file", "metric", "columns", "score_range"]


# ------------------------------------------------------------------------------------------------ /compare
def test_compare_paraphrase_beats_unrelated(served, bundled):
    score, verdict, threshold, heatmap = served.client.predict(*PARAPHRASE, "cosine", api_name="/compare")
    other, other_verdict, _, _ = served.client.predict(*UNRELATED, "cosine", api_name="/compare")
    assert score > other
    assert (verdict, other_verdict) == ("same meaning", "different")
    assert threshold == pytest.approx(bundled.config.threshold_for("cosine"))
    assert heatmap["type"] == "matplotlib"
    header, data = heatmap["plot"].split(",", 1)
    assert header == "data:image/png;base64" and base64.b64decode(data).startswith(b"\x89PNG")


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "dot"])
def test_compare_every_metric(served, metric):
    score, verdict, threshold, _ = served.client.predict(*PARAPHRASE, metric, api_name="/compare")
    other, _, _, _ = served.client.predict(*UNRELATED, metric, api_name="/compare")
    assert score > other and threshold is not None
    assert verdict == ("same meaning" if score >= threshold else "different")


def test_compare_without_threshold_says_so(served, bundled, monkeypatch):
    monkeypatch.delitem(bundled.config.thresholds, "manhattan")
    score, verdict, threshold, _ = served.client.predict(*PARAPHRASE, "manhattan", api_name="/compare")
    assert (verdict, threshold) == ("no threshold", None) and 0 < score <= 1
    assert app.verdict_for(0.9, None) == "no threshold"
    assert app.verdict_for(0.5, 0.5) == "same meaning" and app.verdict_for(0.49, 0.5) == "different"


def test_token_heatmap_drops_special_tokens(bundled):
    tokens_a, tokens_b, matrix = app.token_similarity(bundled, "The dog bit the man.", "The man bit the dog.")
    assert tokens_a == ["the", "dog", "bit", "the", "man", "."]
    assert tokens_b == ["the", "man", "bit", "the", "dog", "."]
    assert matrix.shape == (6, 6) and float(matrix.max()) <= 1.0001
    assert matrix[1, 4] > matrix[1, 2]  # "dog" is closer to "dog" than to "bit", wherever it stands


def test_compare_bad_input(served):
    client = served.client
    assert "empty" in _error(client, "", "A sentence.", "cosine", api_name="/compare")
    assert "second sentence is only spaces" in _error(client, "A sentence.", "   ", "cosine", api_name="/compare")
    assert "2,000" in _error(client, "x" * 2_001, "A sentence.", "cosine", api_name="/compare")
    assert "jaccard" in _error(client, *PARAPHRASE, "jaccard", api_name="/compare")
    _still_serving(client)


# ------------------------------------------------------------------------------------------------ /ask
def test_ask_answers_a_shipped_question(served):
    result = served.client.predict("how do I install sentsim", api_name="/ask")
    assert result["confident"] and result["id"] == "install"
    assert "install.sh" in result["answer"] and result["score"] >= result["threshold"]
    assert result["matched_question"] == "How do I install sentsim?"
    assert 1 <= len(result["alternatives"]) <= 3
    assert result["answer"] in result["reply"] and "Matched FAQ question" in result["reply"]


def test_ask_says_it_does_not_know(served):
    result = served.client.predict("what is the capital of France", api_name="/ask")
    assert result["answer"] is None and not result["confident"]
    assert "don't know" in result["reply"] and "Did you mean" in result["reply"]
    assert 1 <= len(result["suggestions"]) <= 3


def test_ask_bad_input(served):
    assert "question is only spaces" in _error(served.client, "  ", api_name="/ask")
    assert "2,000" in _error(served.client, "why " * 600, api_name="/ask")
    assert served.client.predict("how do I install sentsim", api_name="/ask")["confident"]


def test_chat_turn_and_vote_write_feedback(served):
    """The page's chat step and the thumbs handler (browser-only events) on a real answer."""
    result = served.client.predict("how do I install sentsim", api_name="/ask")
    history, cleared, records = app.chat_turn(result, [], {})
    assert cleared == "" and [m["role"] for m in history] == ["user", "assistant"]
    unknown = served.client.predict("what is the capital of France", api_name="/ask")
    history, _, records = app.chat_turn(unknown, history, records)
    assert [o["value"] for o in history[3]["options"]] == unknown["suggestions"]
    assert app.vote_record(records, 0, True) is None  # the user's own message
    assert app.vote_record(records, 1, "") is None  # a vote taken back
    assert app.vote_record(records, 3, False) is None  # "should have answered" names no right answer
    like = next(f for f in served.demo.fns.values() if f.name == "on_vote")
    like.fn(records, SimpleNamespace(index=1, liked=True, value=None))
    like.fn(records, SimpleNamespace(index=1, liked=False, value=None))
    like.fn(records, SimpleNamespace(index=3, liked=True, value=None))
    lines = [json.loads(line) for line in served.feedback.read_text(encoding="utf-8").splitlines()]
    assert [(x["vote"], x["id"], x["label"]) for x in lines] == [
        ("up", "install", 1),  # a good answer: the query means the matched question
        ("down", "install", 0),  # a bad answer: it does not
        ("up", unknown["id"], 0),  # a right "I don't know": the nearest question is not a match
    ]
    assert lines[0]["matched_question"] == "How do I install sentsim?" and lines[2]["answer"] is None
    assert set(lines[0]) == {"query", "matched_question", "answer", "id", "match_score", "vote", "label", "time"}

    # The loop closes: the file is training data for sentsim train (pairs) and sentsim faq train (up votes).
    from sentsim.data import read_pairs
    from sentsim.faq_train import feedback_questions

    pairs = read_pairs(served.feedback)
    assert pairs.kind == "binary" and pairs.labels == [1.0, 0.0, 0.0]
    assert pairs.sentence1[0] == "how do I install sentsim" and pairs.sentence2[0] == "How do I install sentsim?"
    from sentsim.faq import default_faq_path, read_faq

    extra, counts = feedback_questions(served.feedback, read_faq(default_faq_path()))
    assert [(e.question, e.id) for e in extra] == [("how do I install sentsim", "install")]
    assert counts == {"positive": 1, "negative": 2, "unknown": 0, "duplicate": 0}


# ------------------------------------------------------------------------------------------------ /batch
def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_batch_scores_every_row(served, tmp_path):
    rows = [PARAPHRASE, UNRELATED, ("The dog bit the man.", "The man bit the dog.")]
    source = tmp_path / "pairs.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("sentence1", "sentence2"), *rows])
    scored, histogram, summary = served.client.predict(handle_file(str(source)), "cosine", "", "", api_name="/batch")
    with open(scored, encoding="utf-8", newline="") as handle:
        out = list(csv.DictReader(handle))
    assert Path(scored).name == "pairs-scored.csv"
    assert [(r["sentence1"], r["sentence2"]) for r in out] == rows
    scores = [float(r["score"]) for r in out]
    assert scores[0] > scores[1] and [r["same"] for r in out[:2]] == ["1", "0"]
    assert histogram["type"] == "matplotlib" and "Scored 3 pairs" in summary


def test_batch_labels_and_score_range(served, tmp_path):
    source = _write(
        tmp_path / "sts.csv",
        f"a,b,gold\n{PARAPHRASE[0]},{PARAPHRASE[1]},4.8\n{UNRELATED[0]},{UNRELATED[1]},0.2\nA cat.,A kitten.,3.5\n",
    )
    scored, _, summary = served.client.predict(handle_file(str(source)), "cosine", "a,b,gold", "0,5", api_name="/batch")
    with open(scored, encoding="utf-8", newline="") as handle:
        out = list(csv.DictReader(handle))
    assert [float(r["label"]) for r in out] == pytest.approx([0.96, 0.04, 0.7])
    assert "Spearman" in summary


def test_batch_bad_input(served, tmp_path):
    client = served.client

    def bad(name: str, content: str | bytes, columns: str = "") -> str:
        upload = handle_file(str(_write(tmp_path / name, content)))
        return _error(client, upload, "cosine", columns, "", api_name="/batch")

    assert "Upload" in _error(client, None, "cosine", "", "", api_name="/batch")
    message = bad("qa.csv", "id,question,answer\n1,How?,Like so.\n")
    assert "no first sentence column" in message and "qa.csv" in message and "/tmp" not in message
    assert "no column 'left'" in bad("pairs.csv", "sentence1,sentence2\na,b\n", columns="left,right")
    assert "UTF-8" in bad("latin1.csv", "sentence1,sentence2\ncaf\xe9,tea\n".encode("latin-1"))
    big = "sentence1,sentence2\n" + "A fairly long sentence to fill the file,Another one\n" * 45_000
    assert "over the limit of 2 MB" in bad("big.csv", big)
    assert "5,000" in bad("many.csv", "sentence1,sentence2\n" + "a,b\n" * 5_001)
    assert "empty" in bad("empty.csv", b"")
    assert "file type" in bad("pairs.docx", "sentence1,sentence2\na,b\n")
    _still_serving(client)


# ------------------------------------------------------------------------------------------------ /search
def test_search_ranks_the_paraphrase_first(served, tmp_path):
    table = served.client.predict("Someone is playing the guitar.", CORPUS, None, 3, api_name="/search")
    assert table["headers"] == ["rank", "score", "sentence"]
    assert [row[0] for row in table["data"]] == [1, 2, 3]
    assert table["data"][0][2] == "A man is playing a guitar."
    scores = [row[1] for row in table["data"]]
    assert scores == sorted(scores, reverse=True)
    corpus = _write(tmp_path / "corpus.txt", "\ufeff" + CORPUS.replace("\n", "\r\n"))
    table = served.client.predict("I forgot my password", "", handle_file(str(corpus)), 50, api_name="/search")
    assert table["data"][0][2] == "How do I reset my password?" and len(table["data"]) == 5  # blank line dropped


def test_search_bad_input(served, tmp_path):
    client = served.client

    def bad(query: str, text: str = CORPUS, file: bytes | None = None, k: int = 5, name: str = "c.txt") -> str:
        upload = handle_file(str(_write(tmp_path / name, file))) if file is not None else None
        return _error(client, query, text, upload, k, api_name="/search")

    assert "query is empty" in bad("")
    assert "2,000" in bad("q" * 2_001)
    assert "Give the sentences" in bad("guitar", text="  \n ")
    assert "minimum value 1" in bad("guitar", k=0)  # the slider's own check, before our function
    assert "1,000" in bad("guitar", text="\n".join(f"sentence {i}" for i in range(1_001)))
    assert "line 2 has 2,001 characters" in bad("guitar", text="short\n" + "y" * 2_001)
    assert "not valid UTF-8" in bad("guitar", file="caf\xe9\n".encode("latin-1"))
    assert "over the limit of 2 MB" in bad("guitar", file=b"a line\n" * 400_000)
    assert "file type" in bad("guitar", file=b"a,b\n", name="c.csv")
    _still_serving(client)


# ------------------------------------------------------------------------------------------------ feedback log
def _append_many(path: str, writer: int, count: int, width: int) -> None:
    for i in range(count):
        app.append_feedback(path, {"writer": writer, "i": i, "query": f"{writer}-" * width, "score": 0.5})


def _check_lines(path: Path, writers: int, count: int, width: int) -> None:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == writers * count + 1
    seen = set()
    for line in lines[:-1]:
        record = json.loads(line)  # a torn or interleaved line would not parse, or would not match below
        assert record["query"] == f"{record['writer']}-" * width
        seen.add((record["writer"], record["i"]))
    assert len(seen) == writers * count


def test_append_feedback_threads_never_interleave(tmp_path):
    path, width = tmp_path / "sub" / "feedback.jsonl", 20_000  # 40 KB lines, far over the pipe-atomic size
    threads = [threading.Thread(target=_append_many, args=(str(path), w, 40, width)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_lines(path, 6, 40, width)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_append_feedback_processes_never_interleave(tmp_path):
    path, width = tmp_path / "feedback.jsonl", 20_000
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w, 40, width)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    _check_lines(path, 2, 40, width)


def test_append_feedback_keeps_text_as_is(tmp_path):
    path = tmp_path / "f.jsonl"
    app.append_feedback(path, {"query": "naïve\nquestion «»", "score": 0.25, "vote": "up"})
    line = path.read_text(encoding="utf-8")
    assert line.count("\n") == 1 and json.loads(line)["query"] == "naïve\nquestion «»"


def test_guard_hides_unexpected_errors():
    def boom(text: str) -> str:
        """Args:
        text: anything."""
        raise RuntimeError("secret internals")

    guarded = app._guard(boom)
    assert guarded.__doc__ == boom.__doc__ and guarded.__wrapped__ is boom
    with pytest.raises(app.gr.Error) as info:
        guarded("x")
    assert "secret" not in str(info.value) and "RuntimeError" in str(info.value)


def test_cli_demo_bad_model_is_one_line_exit_2(tmp_path, capsys):
    from sentsim.cli import main

    assert main(["-q", "demo", "--model", str(tmp_path / "nope"), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and err.count("\n") == 1
