"""The LangChain embeddings adapter (with and without LangChain) and the FAQ chatbot example."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sentsim.errors import ConfigError, DataError, SentsimError
from sentsim.integrations import MAX_TEXT_CHARS, SentsimEmbeddings

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["A man is playing a guitar.", "How do I reset my password?", "Stocks fell sharply on Monday."]


@pytest.fixture(scope="module")
def emb(bundled):
    return SentsimEmbeddings(bundled, batch_size=2)


def test_embed_documents_equals_model_encode(emb, bundled):
    vectors = emb.embed_documents(TEXTS)
    assert isinstance(vectors, list) and len(vectors) == len(TEXTS)
    assert all(isinstance(v, list) and len(v) == bundled.dimension == emb.dimension == 384 for v in vectors)
    assert all(type(x) is float for v in vectors for x in v)
    np.testing.assert_allclose(np.array(vectors), bundled.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.embed_documents(("tuples", "work too")) == emb.embed_documents(["tuples", "work too"])


def test_embed_query_equals_embed_documents(emb):
    query = "I forgot my password"
    vector = emb.embed_query(query)
    assert vector == emb.embed_documents([query])[0]
    assert len(vector) == 384 and abs(np.linalg.norm(vector) - 1) < 1e-5
    assert emb.embed_query("") == emb.embed_documents([""])[0]  # an empty document is still a document


def test_async_variants_match(emb):
    async def both():
        return await asyncio.gather(emb.aembed_documents(TEXTS), emb.aembed_query(TEXTS[1]))

    docs, query = asyncio.run(both())
    assert docs == emb.embed_documents(TEXTS)
    assert query == emb.embed_query(TEXTS[1])
    with pytest.raises(ConfigError, match="not one string"):
        asyncio.run(emb.aembed_documents("one string"))


def test_unnormalised_option_and_repr(bundled):
    raw = SentsimEmbeddings(bundled, normalize=False)
    np.testing.assert_allclose(raw.embed_query(TEXTS[0]), bundled.encode(TEXTS[0]), atol=1e-5)  # the model normalises
    assert "SentsimEmbeddings(SiameseModel(" in repr(raw) and "normalize=False" in repr(raw)


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        ("just one string", ConfigError, r"not one string \(use embed_query\)"),
        ([], ConfigError, "empty list"),
        (["fine", 3, "fine"], ConfigError, r"texts\[1\] must be text, not int"),
        (["fine", None], ConfigError, r"texts\[1\] must be text, not NoneType"),
        (["fine", "x" * (MAX_TEXT_CHARS + 1)], DataError, r"texts\[1\] has 100,001 characters, over the limit"),
        ({"a": 1}, ConfigError, "list of texts, not dict"),
    ],
)
def test_embed_documents_refuses_bad_input(emb, texts, error, message):
    with pytest.raises(error, match=message) as info:
        emb.embed_documents(texts)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_embed_query_and_constructor_refuse_bad_input(emb, bundled):
    with pytest.raises(ConfigError, match="the query must be text, not list"):
        emb.embed_query(["a list"])
    with pytest.raises(DataError, match="the query has 100,001 characters"):
        emb.embed_query("x" * (MAX_TEXT_CHARS + 1))
    assert len(emb.embed_query("x" * MAX_TEXT_CHARS)) == 384  # the limit itself is fine (truncated by the encoder)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        SentsimEmbeddings(bundled, batch_size=0)
    with pytest.raises(ConfigError, match="model must be a SiameseModel, a model folder or None"):
        SentsimEmbeddings(bundled.encoder)
    with pytest.raises(SentsimError):
        SentsimEmbeddings("/nonexistent/model-folder")


def test_loads_a_model_folder(tiny_model_dir):
    vector = SentsimEmbeddings(tiny_model_dir).embed_query("hello")
    assert len(vector) == 32


def test_is_a_langchain_embeddings_in_a_vector_store(emb):
    pytest.importorskip("langchain_core")
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    import sentsim.integrations

    assert sentsim.integrations.HAS_LANGCHAIN
    assert isinstance(emb, Embeddings) and issubclass(SentsimEmbeddings, Embeddings)
    store = InMemoryVectorStore(embedding=emb)
    store.add_texts(["The cat sat on the mat.", "How do I reset my password?", "Quarterly revenue grew by 8%."])
    hits = store.similarity_search("I forgot my password, how can I change it?", k=3)
    assert [d.page_content for d in hits][0] == "How do I reset my password?"
    hits = asyncio.run(store.asimilarity_search("a kitten sitting on a rug", k=1))
    assert hits[0].page_content == "The cat sat on the mat."


def test_works_without_langchain():
    """langchain_core made unimportable: the module still imports, the class is a plain one and embeds."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["langchain_core"] = None  # import langchain_core now raises ImportError
        from sentsim.integrations import HAS_LANGCHAIN, SentsimEmbeddings
        assert not HAS_LANGCHAIN and SentsimEmbeddings.__mro__[1:] == (object,), SentsimEmbeddings.__mro__
        vector = SentsimEmbeddings().embed_query("A man is playing a guitar.")
        assert len(vector) == 384 and isinstance(vector[0], float)
        print("ok", "langchain_core" in sys.modules and sys.modules["langchain_core"] is None)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok True"


def test_faq_bot_example(tmp_path):
    faq = tmp_path / "faq.csv"
    with faq.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "answer"])
        writer.writerow(["How do I reset my password?", "Use the 'Forgot password' link on the sign-in page."])
        writer.writerow(["Where can I download my invoices?", "Invoices are under Billing > History."])
        writer.writerow(["How do I cancel my subscription?", "Go to Settings > Plan and choose Cancel."])
        writer.writerow(["Can I pay with PayPal?", "Yes: PayPal, Visa and Mastercard are accepted."])
    known, unrelated, too_long = "How do I reset my password?", "What is the capital of Peru?", "x" * 2_001
    asked = [known, too_long, unrelated, "", "   ", "quit", "Where can I download my invoices?"]
    stdin = "\n".join(asked) + "\n"
    out = subprocess.run(
        [sys.executable, "examples/faq_bot.py", "--faq", str(faq), "--threshold", "0.6"],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "Use the 'Forgot password' link on the sign-in page."
    assert lines[1].startswith("Please ask another way: the query has 2,001 characters")  # and the loop goes on
    assert lines[2] == "Sorry, I don't know that one."
    suggestions = lines[3:]
    assert len(suggestions) == 3 and all(s.startswith("Did you mean: ") and s.endswith("?") for s in suggestions)
    assert len(set(suggestions)) == 3 and not any(s.endswith("??") for s in suggestions)
    assert "you>" not in out.stdout  # no prompt when stdin is not a terminal
    assert "Invoices are under" not in out.stdout  # nothing is read after quit (the last line would match)


def test_faq_bot_example_bad_faq_file(tmp_path, bundled, monkeypatch, capsys):
    """In-process (a subprocess costs seconds of imports): a bad FAQ file is one line on stderr and exit code 2."""
    import runpy

    import sentsim

    monkeypatch.setattr(sentsim, "load", lambda *args, **kwargs: bundled)
    monkeypatch.setattr(sys, "argv", ["faq_bot.py", "--faq", str(tmp_path / "missing.csv")])
    monkeypatch.setattr(sys, "stdin", io.StringIO("How do I reset my password?\n"))
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(ROOT / "examples" / "faq_bot.py"), run_name="__main__")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing.csv: file not found" in err and err.count("\n") == 1
