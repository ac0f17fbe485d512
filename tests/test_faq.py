"""The FAQ bot: answering and abstaining, FAQ files and their bad input, editing, saving, calibration."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import sentsim
from sentsim.errors import ConfigError, DataError, ModelError, OutputExistsError
from sentsim.faq import FAQBot, QueryError, default_faq_path, read_faq

FAQ = [
    ("How do I reset my password?", "Use the 'Forgot password' link on the sign-in page.", "password"),
    ("I forgot my password, what now?", "Use the 'Forgot password' link on the sign-in page.", "password"),
    ("Where can I download my invoices?", "Invoices are under Billing > History.", "invoices"),
    ("How do I cancel my subscription?", "Go to Settings > Plan and choose Cancel.", "cancel"),
    ("Can I pay with PayPal?", "Yes: PayPal, Visa and Mastercard are accepted.", "payment"),
    ("Which payment methods do you take?", "Yes: PayPal, Visa and Mastercard are accepted.", "payment"),
]


@pytest.fixture(scope="module")
def bot(bundled):
    return FAQBot.from_pairs(FAQ, model=bundled, threshold=0.5)


def test_answers_a_paraphrase_with_its_entry(bot):
    ans = bot.ask("i can't remember my password")
    assert ans.confident and ans.reason == "answered"
    assert ans.answer == FAQ[0][1] and ans.id == "password"
    assert ans.question in (FAQ[0][0], FAQ[1][0])
    assert 0.5 <= ans.score <= 1.0
    # alternatives: other answers only, best first, none repeating the returned one
    ids = [a.id for a in ans.alternatives]
    assert len(ids) == 3 and "password" not in ids and len(set(ids)) == 3
    assert [a.score for a in ans.alternatives] == sorted((a.score for a in ans.alternatives), reverse=True)
    assert ans.alternatives[0].score <= ans.score
    assert json.loads(json.dumps(ans.to_dict()))["alternatives"][0]["id"] == ids[0]


def test_says_it_does_not_know_an_unrelated_question(bot):
    ans = bot.ask("What is the tallest mountain in Africa?")
    assert ans.answer is None and not ans.confident and ans.reason == "below_threshold"
    assert ans.score < 0.5
    assert ans.question  # still says what it matched best, for "did you mean ...?"


def test_ambiguous_when_the_best_two_answers_are_close(bundled):
    close = FAQBot.from_pairs(FAQ, model=bundled, threshold=0.0, margin=0.9)
    ans = close.ask("how do I pay")
    assert ans.answer is None and ans.reason == "ambiguous"
    assert ans.score - ans.alternatives[0].score < 0.9


@pytest.mark.parametrize("max_fetch", [2048, 32])  # a wider search finds them; or ranking every entry by answer
def test_alternatives_are_distinct_answers_even_when_one_answer_has_many_questions(bundled, monkeypatch, max_fetch):
    from sentsim import faq

    monkeypatch.setattr(faq, "_MAX_FETCH", max_fetch)
    many = [(f"How do I reset my password, question {i}?", "Reset it on the sign-in page.") for i in range(60)]
    others = [("Where are my invoices?", "Under Billing."), ("Can I pay by card?", "Yes, any card.")]
    b = FAQBot.from_pairs([*many, *others], model=bundled, threshold=0.0)
    ans = b.ask("password reset please", alternatives=2)
    assert ans.answer == "Reset it on the sign-in page."
    # the 32 nearest questions are all about the password: the other two answers are further out
    q = bundled.encode("password reset please")
    best_other = {a: max(float(q @ bundled.encode(x)) for x, y in others if y == a) for _, a in others}
    assert [a.answer for a in ans.alternatives] == sorted(best_other, key=best_other.get, reverse=True)
    assert [a.score for a in ans.alternatives] == pytest.approx(sorted(best_other.values(), reverse=True), abs=1e-4)


def test_ask_many_matches_ask(bot):
    queries = ["forgot password", "cancel my plan", "paypal?"]
    many = bot.ask_many(queries)
    for q, a in zip(queries, many):
        one = bot.ask(q)
        assert (one.answer, one.id) == (a.answer, a.id)
        assert one.score == pytest.approx(a.score, abs=1e-5)


@pytest.mark.parametrize(
    ("query", "message"),
    [("", "empty"), ("   \t ", "only spaces"), ("x" * 1_000_000, "over the limit"), (42, "must be text")],
)
def test_bad_queries_are_one_line_errors(bot, query, message):
    with pytest.raises(QueryError, match=message) as info:
        bot.ask(query)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert bot.ask("forgot my password").answer  # and the bot keeps answering


class _Fixed:
    """A model with given embeddings: ``vectors[text]``, else a fixed pseudo-random unit vector per text."""

    config = type("Config", (), {"base_model": "fixed", "threshold_for": staticmethod(lambda metric: None)})()

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def encode(self, texts, batch_size=32, show_progress_bar=None):
        rows = []
        for text in texts:
            v = self.vectors.get(text)
            if v is None:
                v = np.random.default_rng(sum(map(ord, text))).normal(size=2)
            rows.append(np.asarray(v, dtype=np.float32) / np.linalg.norm(v))
        return np.stack(rows)


def _two_answers():
    """A: one question the query almost repeats and one far from it; B: two questions a little less near.
    By its best question A wins (0.99 against 0.98); by the mean of its best two, B does (0.975 against 0.745)."""
    vectors = {"a near": [0.99, 0.141], "a far": [0.5, 0.866], "b one": [0.98, 0.199], "b two": [0.97, 0.243]}
    vectors["the query"] = [1.0, 0.0]
    pairs = [("a near", "answer A"), ("a far", "answer A"), ("b one", "answer B"), ("b two", "answer B")]
    return pairs, _Fixed(vectors)


def test_answer_k_scores_an_answer_by_the_mean_of_its_best_questions(tmp_path):
    pairs, model = _two_answers()
    one = FAQBot.from_pairs(pairs, model=model, threshold=0.5).ask("the query")
    assert (one.answer, one.question) == ("answer A", "a near") and one.score == pytest.approx(0.99, abs=1e-3)
    bot = FAQBot.from_pairs(pairs, model=model, threshold=0.5, answer_k=2)
    two = bot.ask("the query")
    assert (two.answer, two.question) == ("answer B", "b one")  # the answer's best question is the one shown
    assert two.score == pytest.approx((0.98 + 0.97) / 2, abs=1e-3)
    assert [(a.answer, round(a.score, 3)) for a in two.alternatives] == [("answer A", pytest.approx(0.745, abs=1e-3))]
    assert bot.ask_many(["the query"])[0].answer == "answer B"
    # an answer with fewer questions than answer_k is scored by all of them
    assert FAQBot.from_pairs(pairs, model=model, answer_k=5, threshold=0.5).ask("the query").answer == "answer B"
    # saved with the bot; a load may ask for another
    folder = bot.save(tmp_path / "bot")
    assert json.loads((folder / "bot.json").read_text())["answer_k"] == 2
    assert FAQBot.load(folder, model=model).ask("the query").answer == "answer B"
    assert FAQBot.load(folder, model=model, answer_k=1).ask("the query").answer == "answer A"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_answer_k_must_be_a_positive_integer(bad):
    pairs, model = _two_answers()
    with pytest.raises(ConfigError, match="answer_k must be a positive integer"):
        FAQBot.from_pairs(pairs, model=model, answer_k=bad)


# ------------------------------------------------------------------------------------------------ files
def _write_all_formats(tmp_path):
    import yaml

    rows = [{"question": q, "answer": a, "id": i, "tags": "account"} for q, a, i in FAQ]
    (tmp_path / "faq.csv").write_text(
        "question,answer,id,tags\n" + "".join(f'"{q}","{a}",{i},account\n' for q, a, i in FAQ), encoding="utf-8"
    )
    (tmp_path / "faq.tsv").write_text(
        "question\tanswer\tid\n" + "".join(f"{q}\t{a}\t{i}\n" for q, a, i in FAQ), encoding="utf-8"
    )
    (tmp_path / "faq.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    grouped: dict[str, dict] = {}
    for q, a, i in FAQ:
        grouped.setdefault(i, {"id": i, "answer": a, "questions": [], "tags": ["account"]})["questions"].append(q)
    (tmp_path / "faq.json").write_text(json.dumps({"entries": list(grouped.values())}), encoding="utf-8")
    (tmp_path / "faq.yaml").write_text(yaml.safe_dump(list(grouped.values())), encoding="utf-8")
    return ["faq.csv", "faq.tsv", "faq.jsonl", "faq.json", "faq.yaml"]


def test_every_file_format_reads_the_same_entries(tmp_path):
    names = _write_all_formats(tmp_path)
    expected = [(q, a, i) for q, a, i in FAQ]
    for name in names:
        entries = read_faq(tmp_path / name)
        assert sorted((e.question, e.answer, e.id) for e in entries) == sorted(expected), name
    assert read_faq(tmp_path / "faq.csv")[0].tags == ("account",)
    assert read_faq(tmp_path / "faq.yaml")[0].tags == ("account",)


def test_ids_are_made_from_shared_answers(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\nq one,A\nq two,B\nq three,A\n", encoding="utf-8")
    entries = read_faq(path)
    assert entries[0].id == entries[2].id != entries[1].id


def test_the_bundled_faq_is_real(bundled):
    entries = read_faq(default_faq_path())
    answers = {e.id for e in entries}
    assert len(answers) >= 40 and len(entries) >= 3 * len(answers)  # paraphrases of each entry
    bot = FAQBot.from_file(model=bundled)
    assert bot.ask("How do I install sentsim?").id == "install"
    # calibrated on the labelled queries that ship beside it, out-of-scope ones included
    assert bot.calibration["out_of_scope"] >= 40 and bot.calibration["in_scope"] >= 100
    assert bot.calibration["out_of_scope_recall"] >= 70 and bot.calibration["in_scope_accuracy"] >= 70
    assert bot.ask("What is the capital of France?").answer is None
    assert FAQBot.from_file(model=bundled, threshold=0.1).calibration is None  # a given threshold is kept


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "the file is empty"),
        ("empty.yaml", "\n\n", "the file is empty"),
        ("noanswer.csv", "question,notes\nhello,x\n", "no answer column"),
        ("blankq.csv", "question,answer\nhello,hi\n  ,an answer\n", r"row 3.*question.*empty"),
        ("blanka.csv", "question,answer\nhello,\n", r"row 2.*answer is empty"),
        ("dup.csv", "question,answer\nHow do I pay?,A\nother,B\nhow do  I pay?,C\n", r"row 4.*also at row 2"),
        ("bad.yaml", "entries:\n  - question: [unclosed\n", r"line \d+ is not valid YAML"),
        ("bad.json", '{"entries": [', r"line 1 is not valid JSON"),
        ("keys.yaml", "- question: hi\n  answer: there\n  colour: red\n", r"entry 1: unknown key 'colour'"),
        ("noq.yaml", "- answer: there\n", r"entry 1: no question"),
        ("noa.json", '[{"question": "hi"}]', r"entry 1: no answer"),
        ("emptyq.yaml", "- questions: [hi, '']\n  answer: x\n", r"entry 1, question 2: the question is empty"),
        ("notutf8.yaml", b"- question: caf\xe9\n  answer: x\n", r"line 1 is not valid UTF-8"),
    ],
)
def test_bad_faq_files_are_one_line_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(DataError, match=message) as info:
        read_faq(path)
    assert "\n" not in str(info.value) and name in str(info.value)


def test_duplicate_question_can_keep_the_last(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("question,answer\nHow do I pay?,A\nother,B\nhow do  I pay?,C\n", encoding="utf-8")
    entries = read_faq(path, on_duplicate="last")
    assert [(e.question, e.answer) for e in entries] == [("how do  I pay?", "C"), ("other", "B")]
    path.write_text("question,answer\nHow do I pay?,A\nHow do I pay?,A\n", encoding="utf-8")
    assert len(read_faq(path)) == 1  # the same question and answer twice is no conflict


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_faq(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="directory"):
        read_faq(tmp_path)


# ------------------------------------------------------------------------------------------------ editing
def test_add_and_remove_touch_only_their_question(bundled):
    b = FAQBot.from_pairs(FAQ, model=bundled, threshold=0.5)
    before = b._emb.copy()
    entry = b.add("Do you have a mobile app?", "Yes, for iOS and Android.", tags=["apps"])
    assert len(b) == len(FAQ) + 1 and entry.id not in {i for _, _, i in FAQ}
    np.testing.assert_array_equal(b._emb[: len(FAQ)], before)  # the others were not embedded again
    assert b.ask("is there an app for my phone").answer == "Yes, for iOS and Android."
    assert b.add("Can I pay by PayPal?", FAQ[4][1]).id == "payment"  # a paraphrase joins its answer's entry
    b.remove("do you have a MOBILE app?")
    assert b.ask("is there an app for my phone").id != entry.id
    with pytest.raises(DataError, match="not in the FAQ"):
        b.remove("never asked")
    with pytest.raises(DataError, match="already in the FAQ with another answer"):
        b.add("How do I reset my password?", "Call us.")
    with pytest.raises(DataError, match="question is empty"):
        b.add("  ", "x")


# ------------------------------------------------------------------------------------------------ saving
def test_save_and_load_round_trip(tmp_path, bot, bundled):
    bot.calibration = None
    folder = bot.save(tmp_path / "bot")
    assert sorted(p.name for p in folder.iterdir()) == ["bot.json", "embeddings.npy", "entries.json", "fingerprint.npy"]
    np.load(folder / "embeddings.npy", allow_pickle=False)  # plain arrays, no pickle
    again = FAQBot.load(folder, model=bundled)
    assert (again.threshold, again.margin, len(again)) == (bot.threshold, bot.margin, len(bot))
    np.testing.assert_array_equal(again._emb, bot._emb)
    q = "i can't remember my password"
    assert again.ask(q).answer == bot.ask(q).answer
    with pytest.raises(OutputExistsError):
        bot.save(folder)
    bot.save(folder, overwrite=True)


def test_load_with_another_model_embeds_again(tmp_path, bot, tiny_model_dir, caplog):
    folder = bot.save(tmp_path / "bot")
    tiny = sentsim.load(tiny_model_dir, device="cpu")
    with caplog.at_level(logging.WARNING, logger="sentsim.faq"):
        other = FAQBot.load(folder, model=tiny)
    assert "embedded by another model" in caplog.text
    assert other._emb.shape == (len(FAQ), tiny.dimension) != bot._emb.shape
    other.ask("password")  # works, on its own embeddings


def test_damaged_or_foreign_folders_are_refused(tmp_path, bot):
    with pytest.raises(ModelError, match="not a saved FAQ bot"):
        FAQBot.load(tmp_path)
    folder = bot.save(tmp_path / "bot")
    np.save(folder / "embeddings.npy", np.zeros((2, 384), dtype=np.float32))
    with pytest.raises(ModelError, match="do not match"):
        FAQBot.load(folder, model=bot.model)


# ------------------------------------------------------------------------------------------------ calibration
CAL_IN = [
    ("i lost my password", "password"),
    ("password reset how", "password"),
    ("where are the invoices", "invoices"),
    ("download a bill", "invoices"),
    ("stop my subscription", "cancel"),
    ("how can i unsubscribe", "cancel"),
    ("do you accept credit cards", "payment"),
    ("can I pay by visa", "payment"),
]
CAL_OUT = ["what's the weather tomorrow", "recommend a good pizza place", "who won the world cup", "tell me a joke"]


@pytest.mark.parametrize("answer_k", [1, 2])
def test_calibrate_balanced_separates_in_and_out_of_scope(bundled, answer_k):
    b = FAQBot.from_pairs(FAQ, model=bundled, threshold=0.99, answer_k=answer_k)
    queries = [q for q, _ in CAL_IN] + CAL_OUT
    expected = [i for _, i in CAL_IN] + [None] * len(CAL_OUT)
    t = b.calibrate(queries, expected)
    assert b.threshold == t and 0 < t < 0.99
    cal = b.calibration
    assert cal["objective"] == "balanced" and cal["in_scope"] == 8 and cal["out_of_scope"] == 4
    assert cal["in_scope_accuracy"] >= 75 and cal["out_of_scope_recall"] >= 75
    # the figures are what asking gives at the chosen setting
    answers = b.ask_many(queries)
    right = sum(a.answer is not None and a.id == e for a, e in zip(answers, expected) if e is not None)
    assert 100 * right / 8 == pytest.approx(cal["in_scope_accuracy"])
    kept_out = sum(a.answer is None for a in answers[8:])
    assert 100 * kept_out / 4 == pytest.approx(cal["out_of_scope_recall"])


def test_calibrate_for_precision_and_by_answer_text(bundled):
    b = FAQBot.from_pairs(FAQ, model=bundled)
    queries = [q for q, _ in CAL_IN] + CAL_OUT
    by_answer = [dict((i, a) for _, a, i in FAQ)[i] for _, i in CAL_IN] + [""] * len(CAL_OUT)
    b.calibrate(queries, by_answer, objective="precision", target_precision=1.0)
    answers = b.ask_many(queries)
    given = [(a, e) for a, e in zip(answers, by_answer) if a.answer is not None]
    assert given and all(a.answer == e for a, e in given)  # precision 100%
    assert b.calibration["precision"] == 100.0


def _lead_case():
    """Answers A (question along x) and B (along y). "clear" is 0.65 from A and 0.10 from B; "close" is 0.70 from A
    but 0.69 from B too. By the best score, "close" is the better match; by the best score plus its lead, "clear"."""

    def query(a, b):
        return [a, b, float(np.sqrt(1 - a * a - b * b))]

    vectors = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "clear": query(0.65, 0.10), "close": query(0.70, 0.69)}
    return [("a", "answer A", "A"), ("b", "answer B", "B")], _Fixed(vectors)


def test_gap_weight_counts_the_best_answers_lead_over_the_next(tmp_path):
    pairs, model = _lead_case()
    plain = FAQBot.from_pairs(pairs, model=model, threshold=0.675)
    assert plain.ask("close").answer == "answer A" and plain.ask("clear").answer is None
    assert plain.ask("clear").confidence == pytest.approx(plain.ask("clear").score)  # gap_weight 0: the score
    bot = FAQBot.from_pairs(pairs, model=model, threshold=0.9, gap_weight=1.0)
    clear, close = bot.ask("clear"), bot.ask("close")
    assert clear.answer == "answer A" and clear.confidence == pytest.approx(0.65 + (0.65 - 0.10), abs=1e-5)
    assert clear.score == pytest.approx(0.65, abs=1e-5)  # the similarity itself is unchanged
    assert close.answer is None and close.reason == "below_threshold"
    assert close.confidence == pytest.approx(0.71, abs=1e-5)
    assert close.to_dict()["gap_weight"] == 1.0 and close.to_dict()["confidence"] == pytest.approx(0.71, abs=1e-5)
    # saved with the bot; a bot saved before gap_weight existed loads with 0
    folder = bot.save(tmp_path / "bot")
    assert FAQBot.load(folder, model=model).ask("clear").answer == "answer A"
    settings = json.loads((folder / "bot.json").read_text())
    del settings["gap_weight"]
    (folder / "bot.json").write_text(json.dumps(settings))
    assert FAQBot.load(folder, model=model).gap_weight == 0.0
    for bad in (-0.5, float("nan"), 1e6, "much"):
        with pytest.raises(ConfigError, match="gap_weight must be"):
            FAQBot.from_pairs(pairs, model=model, gap_weight=bad)


def test_asking_for_no_alternatives_decides_as_with_them():
    """The margin and the gap weight need the runner-up answer, also when the caller wants none shown: asking with
    alternatives=0 once skipped the ambiguity rule and answered where alternatives=3 said "ambiguous"."""
    pairs, model = _lead_case()
    bot = FAQBot.from_pairs(pairs, model=model, threshold=0.5, margin=0.05)
    shown, bare = bot.ask("close"), bot.ask("close", alternatives=0)
    assert shown.reason == bare.reason == "ambiguous" and bare.answer is None and bare.alternatives == []
    bot = FAQBot.from_pairs(pairs, model=model, threshold=0.9, gap_weight=1.0)
    assert [a.answer for a in bot.ask_many(["clear", "close"], alternatives=0)] == ["answer A", None]
    assert bot.ask("clear", alternatives=0).confidence == pytest.approx(bot.ask("clear").confidence)


def test_calibrate_chooses_the_gap_weight_that_separates(tmp_path):
    pairs, model = _lead_case()
    queries, expected = ["clear", "close"], ["A", None]  # "close" is out of scope: A is not its answer
    plain = FAQBot.from_pairs(pairs, model=model)
    plain.calibrate(queries, expected, gap_weights=(0.0,), margins=(0.0,))
    cal = plain.calibration  # no threshold on the best score alone gets both right
    assert plain.gap_weight == 0.0 and cal["in_scope_accuracy"] + cal["out_of_scope_recall"] == 100
    bot = FAQBot.from_pairs(pairs, model=model)
    bot.calibrate(queries, expected, margins=(0.0,))
    cal = bot.calibration
    assert bot.gap_weight == cal["gap_weight"] == 0.5  # the smallest of (0, 0.5, 1, 2) that separates them
    assert (cal["in_scope_accuracy"], cal["out_of_scope_recall"]) == (100.0, 100.0)
    assert bot.ask("clear").answer == "answer A" and bot.ask("close").answer is None
    with pytest.raises(ConfigError, match="gap_weight must be in"):
        bot.calibrate(queries, expected, gap_weights=(0.0, -1.0))
    with pytest.raises(ConfigError, match="at least one weight"):
        bot.calibrate(queries, expected, gap_weights=())


def test_calibrate_for_accuracy_catches_the_most_out_of_scope_at_the_accuracy_asked():
    """In scope, all answered rightly when answered: 0.9, 0.8, 0.7, 0.6; out of scope: 0.85, 0.65, 0.5."""
    scores = {"i9": 0.9, "i8": 0.8, "i7": 0.7, "i6": 0.6, "o85": 0.85, "o65": 0.65, "o5": 0.5}
    vectors = {q: [s, 0.0, float(np.sqrt(1 - s * s))] for q, s in scores.items()}
    vectors |= {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "wrong": [0.1, 0.9, float(np.sqrt(0.18))]}
    bot = FAQBot.from_pairs([("a", "answer A", "A"), ("b", "answer B", "B")], model=_Fixed(vectors))
    queries = list(scores)
    expected = ["A"] * 4 + [None] * 3
    plain = {"gap_weights": (0.0,), "margins": (0.0,)}
    bot.calibrate(queries, expected, objective="accuracy", target_accuracy=0.5, **plain)
    cal = bot.calibration
    assert 0.7 < bot.threshold <= 0.8 and cal["objective"] == "accuracy" and cal["target_accuracy"] == 0.5
    assert (cal["in_scope_accuracy"], cal["out_of_scope_recall"]) == (50.0, pytest.approx(66.67))
    bot.calibrate(queries, expected, objective="accuracy", target_accuracy=1.0, **plain)
    assert bot.threshold <= 0.6 and bot.calibration["out_of_scope_recall"] == pytest.approx(33.33)
    assert "target_met" not in bot.calibration
    # an in-scope query the bot gets wrong: no threshold keeps accuracy 1.0, and the calibration says so
    bot.calibrate([*queries, "wrong"], [*expected, "A"], objective="accuracy", target_accuracy=1.0, **plain)
    assert bot.calibration["target_met"] is False and bot.calibration["in_scope_accuracy"] == 80.0
    with pytest.raises(ConfigError, match="target_accuracy must be in"):
        bot.calibrate(queries, expected, objective="accuracy", target_accuracy=0.0)


def test_calibrate_bad_input(bot):
    with pytest.raises(DataError, match="neither an id nor an answer"):
        bot.calibrate(["hello"], ["no-such-entry"])
    with pytest.raises(ConfigError, match="1 queries but 2"):
        bot.calibrate(["hello"], ["password", None])
    with pytest.raises(ConfigError, match="objective"):
        bot.calibrate(["hello"], [None], objective="recall")
    with pytest.raises(QueryError):
        bot.calibrate([""], [None])


def test_faiss_index_needs_faiss_or_matches_exact(bundled):
    try:
        import faiss  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"sentsim\[faiss\]"):
            FAQBot.from_pairs(FAQ, model=bundled, index="hnsw").ask("password")
        return
    exact = FAQBot.from_pairs(FAQ, model=bundled, index="exact")
    for kind in ("flat", "hnsw"):
        other = FAQBot.from_pairs(FAQ, model=bundled, index=kind)
        for q in ("forgot password", "pay with paypal", "cancel plan"):
            assert other.ask(q).id == exact.ask(q).id
            assert other.ask(q).score == pytest.approx(exact.ask(q).score, abs=1e-4)


# ------------------------------------------------------------------------------------------------ CLI
def _cli_faq(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text("question,answer,id\n" + "".join(f'"{q}","{a}",{i}\n' for q, a, i in FAQ), encoding="utf-8")
    return path


def test_cli_ask_answers_and_abstains(tmp_path, capsys):
    from sentsim.cli import main

    faq = str(_cli_faq(tmp_path))
    assert main(["-q", "faq", "ask", "--faq", faq, "--threshold", "0.5", "i forgot my password"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(FAQ[0][1]) and "matched" in out
    assert main(["-q", "faq", "ask", "--faq", faq, "--threshold", "0.5", "--json", "best pizza in town"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["answer"] is None and record["reason"] == "below_threshold" and len(record["alternatives"]) == 3
    assert main(["-q", "faq", "ask", "--faq", faq, "--threshold", "0.5", "best pizza in town"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("I don't know") and "Did you mean" in out


def test_cli_calibrate_saves_a_bot_that_ask_uses(tmp_path, capsys):
    from sentsim.cli import main

    faq = str(_cli_faq(tmp_path))
    queries = tmp_path / "queries.csv"
    queries.write_text(
        "query,expected\n" + "".join(f"{q},{i}\n" for q, i in CAL_IN) + "".join(f"{q},\n" for q in CAL_OUT),
        encoding="utf-8",
    )
    bot_dir = tmp_path / "bot"
    assert main(["-q", "faq", "calibrate", "--faq", faq, "--queries", str(queries), "--save", str(bot_dir)]) == 0
    out = capsys.readouterr().out
    assert "in-scope accuracy" in out and "out-of-scope recall" in out and "saved" in out
    saved = json.loads((bot_dir / "bot.json").read_text())
    assert saved["calibration"]["queries"] == len(CAL_IN) + len(CAL_OUT)
    assert main(["-q", "faq", "ask", "--bot", str(bot_dir), "--json", "where do I get my invoice"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["id"] == "invoices" and record["threshold"] == pytest.approx(saved["threshold"])
    # saving over it again needs --overwrite, and the bot already there stays whole
    assert main(["-q", "faq", "calibrate", "--faq", faq, "--queries", str(queries), "--save", str(bot_dir)]) == 2
    assert "already holds" in capsys.readouterr().err
    assert json.loads((bot_dir / "bot.json").read_text()) == saved
    # --answer-k is saved with the calibrated bot, and ask --bot scores with it
    k_dir = tmp_path / "bot-k2"
    argv = ["-q", "faq", "calibrate", "--faq", faq, "--queries", str(queries), "--answer-k", "2", "--save", str(k_dir)]
    assert main(argv) == 0
    capsys.readouterr()
    assert json.loads((k_dir / "bot.json").read_text())["answer_k"] == 2
    assert main(["-q", "faq", "ask", "--bot", str(k_dir), "--json", "which payment methods can I use"]) == 0
    record = json.loads(capsys.readouterr().out)
    bot = FAQBot.load(k_dir)
    assert bot.answer_k == 2 and record["score"] == pytest.approx(bot.ask("which payment methods can I use").score)
    # --objective accuracy and --gap-weights reach calibrate, and the chosen gap weight is saved and used
    g_dir = tmp_path / "bot-acc"
    argv = ["-q", "faq", "calibrate", "--faq", faq, "--queries", str(queries), "--objective", "accuracy",
            "--target-accuracy", "1.0", "--gap-weights", "0,1,3", "--json", "--save", str(g_dir)]  # fmt: skip
    assert main(argv) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["objective"] == "accuracy" and cal["target_accuracy"] == 1.0 and cal["gap_weight"] in (0, 1, 3)
    assert cal["in_scope_accuracy"] == 100.0 or cal.get("target_met") is False
    loaded = FAQBot.load(g_dir)
    assert loaded.gap_weight == cal["gap_weight"] and loaded.threshold == pytest.approx(cal["threshold"], abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["faq", "ask", "--faq", "{faq}", "   "], "only spaces"),
        (["faq", "ask", "--faq", "{faq}", "x" * 100_000], "over the limit"),
        (["faq", "ask", "--faq", "{tmp}/nope.csv", "hi"], "file not found"),
        (["faq", "ask", "--bot", "{tmp}", "hi"], "not a saved FAQ bot"),
        (["faq", "calibrate", "--faq", "{faq}", "--queries", "{tmp}/q.csv"], "neither an id nor an answer"),
        (["faq", "ask", "--faq", "{faq}", "--answer-k", "0", "hi"], "answer_k must be a positive integer"),
        (["faq", "calibrate", "--faq", "{faq}", "--queries", "{tmp}/ok.csv", "--gap-weights", "0,x"], "--gap-weights"),
        (["faq", "calibrate", "--faq", "{faq}", "--queries", "{tmp}/ok.csv", "--gap-weights", "-1"], "gap_weight must"),
        (["faq", "calibrate", "--faq", "{faq}", "--queries", "{tmp}/ok.csv", "--target-accuracy", "0"], "target_acc"),
    ],
)
def test_cli_faq_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    from sentsim.cli import main

    faq = str(_cli_faq(tmp_path))
    (tmp_path / "q.csv").write_text("query,expected\nhow to pay,payment\nforgot password,no-such-id\n")
    (tmp_path / "ok.csv").write_text("query,expected\nhow to pay,payment\nweather on mars,\n")
    argv = [a.replace("{faq}", faq).replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
