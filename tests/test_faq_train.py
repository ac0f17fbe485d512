"""Fine-tuning for one FAQ: the pairs it builds (paraphrase positives, hard negatives from other answers), the
figures before and after, the CLI and its bad input."""

from __future__ import annotations

import json

import pytest

import sentsim
from sentsim.cli import main
from sentsim.errors import ConfigError, DataError
from sentsim.faq import FAQEntry, read_faq
from sentsim.faq_train import faq_figures, faq_pairs, feedback_questions, train_faq

ANIMALS = "cat dog bird fish horse cow".split()
TEMPLATES = ["how do I feed my {}", "what does a {} eat", "food for a {}", "feeding a {} at home"]


def animal_faq(tmp_path):
    path = tmp_path / "faq.csv"
    rows = [f"{t.format(a)},Feed the {a} its own food.,{a}\n" for a in ANIMALS for t in TEMPLATES[:3]]
    path.write_text("question,answer,id\n" + "".join(rows), encoding="utf-8")
    queries = tmp_path / "queries.csv"
    queries.write_text("query,expected\n" + "".join(f"{TEMPLATES[3].format(a)},{a}\n" for a in ANIMALS))
    return path, queries


def test_pairs_are_paraphrases_with_hard_negatives_from_other_answers(tmp_path, bundled):
    path, _ = animal_faq(tmp_path)
    entries = read_faq(path)
    pairs = faq_pairs(entries, bundled, hard_negatives=True, seed=1)
    id_of = {e.question: e.id for e in entries}
    assert len(pairs) == len(entries) and pairs.kind == "none"
    for anchor, positive, negative in zip(pairs.sentence1, pairs.sentence2, pairs.negatives):
        assert anchor != positive and id_of[anchor] == id_of[positive]
        assert id_of[negative] != id_of[anchor]
    # each pair carries its answer and its hard negative's, as codes in the loss's label column
    assert pairs.groups == [id_of[q] for q in pairs.sentence1]
    assert pairs.negative_groups == [id_of[q] for q in pairs.negatives]
    data = pairs.to_dataset()
    assert data.column_names == ["sentence1", "sentence2", "negative", "label"]
    named = list(zip(pairs.groups, pairs.negative_groups))
    code = {g: c for row, label in zip(named, data["label"]) for g, c in zip(row, label)}
    assert len(set(code.values())) == len(code) == len(ANIMALS)  # one code per answer, the same in every row
    assert data["label"] == [[code[g], code[n]] for g, n in named]
    plain = faq_pairs(entries, hard_negatives=False, groups=False)
    assert plain.negatives is None and plain.to_dataset().column_names == ["sentence1", "sentence2"]
    only_groups = faq_pairs(entries, hard_negatives=False)
    assert only_groups.negative_groups is None and len(only_groups.to_dataset()["label"][0]) == 1


def test_hard_negatives_are_among_the_nearest_of_other_answers(bundled):
    entries = [
        FAQEntry("How do I reset my password?", "A", "pw"),
        FAQEntry("I forgot my password", "A", "pw"),
        FAQEntry("How do I change my password?", "B", "change"),
        FAQEntry("Where is the nearest zoo?", "C", "zoo"),
        FAQEntry("What animals live at the zoo?", "C", "zoo"),
        FAQEntry("Can I bring food to the zoo?", "C", "zoo"),
        FAQEntry("What time does the museum open?", "D", "museum"),
    ]
    pairs = faq_pairs(entries, bundled, seed=0)
    negative_of = dict(zip(pairs.sentence1, pairs.negatives))
    # the password questions' negatives come from the three nearest other questions, which include "change"
    assert negative_of["I forgot my password"] in {e.question for e in entries if e.id != "pw"}
    nearest = faq_figures(entries, bundled)
    assert nearest["on"] == "the FAQ's own questions" and 0 <= nearest["top1_accuracy"] <= 100


def test_faq_with_no_paraphrases_is_refused():
    entries = [FAQEntry("a question", "A", "a"), FAQEntry("another one", "B", "b")]
    with pytest.raises(DataError, match="no answer has two or more questions"):
        faq_pairs(entries, hard_negatives=False)


def test_train_faq_saves_a_model_with_figures_before_and_after(tmp_path, tiny_model_dir):
    path, queries = animal_faq(tmp_path)
    r = train_faq(
        path, tmp_path / "out", base_model=str(tiny_model_dir), queries=queries, epochs=4, batch_size=6,
        learning_rate=1e-3, show_progress=False,
    )  # fmt: skip
    assert r.pairs == 18 and r.hard_negatives
    assert r.before["on"] == "6 labelled in-scope queries"
    # the tiny random model learns to tell the animals apart on questions it never saw
    assert r.after["top1_accuracy"] > r.before["top1_accuracy"]
    record = json.loads((tmp_path / "out" / "sentsim_config.json").read_text())["training"]
    assert record["loss"] == "mnrl" and record["faq_figures_after"] == r.after
    assert "hard negatives" in record["train_file"]
    assert "own group are left out of its negatives" in record["loss_reason"]


def test_cli_faq_train(tmp_path, tiny_model_dir, capsys):
    path, queries = animal_faq(tmp_path)
    argv = ["-q", "faq", "train", "--faq", str(path), "--output-dir", str(tmp_path / "m"), "--base-model",
            str(tiny_model_dir), "--epochs", "1", "--batch-size", "6", "--queries", str(queries)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "top-1 before:" in out and "18 training pairs, hard negatives" in out
    assert sentsim.load(tmp_path / "m").config.training["loss"] == "mnrl"
    assert "own group" in sentsim.load(tmp_path / "m").config.training["loss_reason"]
    plain = argv[:6] + [str(tmp_path / "plain")] + argv[7:] + ["--no-mask-same-answer"]
    assert main(plain) == 0
    assert "own group" not in sentsim.load(tmp_path / "plain").config.training["loss_reason"]
    assert main(argv) == 2  # the model is there now
    assert "already holds a model" in capsys.readouterr().err
    bad = tmp_path / "single.csv"
    bad.write_text("question,answer\nq1,A\nq2,B\n")
    argv2 = ["-q", "faq", "train", "--faq", str(bad), "--output-dir", str(tmp_path / "n"), "--base-model",
             str(tiny_model_dir)]  # fmt: skip
    assert main(argv2) == 2
    assert "no answer has two or more questions" in capsys.readouterr().err


def _votes(path, rows):
    keys = ("query", "matched_question", "label")
    lines = [{**dict(zip(keys, row)), "answer": None, "id": None, "match_score": 0.5} for row in rows]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_feedback_right_matches_become_questions_of_their_entry(tmp_path):
    path, _ = animal_faq(tmp_path)
    entries = read_faq(path)
    votes = _votes(
        tmp_path / "feedback.jsonl",
        [
            ("my cat is hungry, what now", "how do I feed my cat", 1),
            ("My cat is hungry, what now ", "what does a cat eat", 1),  # the same query again
            ("how do I feed my dog", "how do I feed my dog", 1),  # already an FAQ question
            ("parrot seed?", "how do I feed my parrot", 1),  # that question is gone from the FAQ
            ("is a cow a fish", "food for a fish", 0),  # a wrong match names no right answer
        ],
    )
    extra, counts = feedback_questions(votes, entries)
    assert [(e.question, e.id, e.tags) for e in extra] == [("my cat is hungry, what now", "cat", ("feedback",))]
    assert counts == {"positive": 1, "negative": 1, "unknown": 1, "duplicate": 2}


def test_feedback_file_without_votes_is_refused(tmp_path):
    path, _ = animal_faq(tmp_path)
    bad = tmp_path / "fb.jsonl"
    bad.write_text(json.dumps({"query": "a", "matched_question": "b"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="fb.jsonl: expected votes labelled 1"):
        feedback_questions(bad, read_faq(path))
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        feedback_questions(tmp_path / "missing.jsonl", read_faq(path))


def test_cli_faq_train_with_feedback(tmp_path, tiny_model_dir, capsys):
    path, queries = animal_faq(tmp_path)
    votes = _votes(
        tmp_path / "feedback.jsonl", [("my cat is hungry", "how do I feed my cat", 1), ("x y", "food for a cow", 0)]
    )
    argv = ["-q", "faq", "train", "--faq", str(path), "--output-dir", str(tmp_path / "m"), "--base-model",
            str(tiny_model_dir), "--epochs", "1", "--batch-size", "6", "--feedback", str(votes)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "19 training pairs" in out and "feedback: 1 queries voted a right match trained on; 1 wrong" in out
    record = sentsim.load(tmp_path / "m").config.training
    assert record["feedback_votes"]["positive"] == 1
    # and plain pair training takes the same file: (query, matched question, label) with 0/1 labels
    argv = ["-q", "train", "--train", str(votes), "--output-dir", str(tmp_path / "p"), "--base-model",
            str(tiny_model_dir), "--epochs", "1", "--batch-size", "2"]  # fmt: skip
    assert main(argv) == 0
    assert sentsim.load(tmp_path / "p").config.training["loss"] == "online_contrastive"


def test_proxy_loss_learns_the_answers_from_the_questions_alone(tmp_path, tiny_model_dir):
    path, queries = animal_faq(tmp_path)
    r = train_faq(
        path, tmp_path / "out", base_model=str(tiny_model_dir), queries=queries, loss="proxy", epochs=4,
        batch_size=6, learning_rate=1e-3, show_progress=False,
    )  # fmt: skip
    assert r.pairs == 18 and not r.hard_negatives  # every question once, nothing mined
    assert r.after["top1_accuracy"] > r.before["top1_accuracy"]  # on queries it never saw
    record = json.loads((tmp_path / "out" / "sentsim_config.json").read_text())["training"]
    assert record["loss"] == "proxy" and record["train_pairs"] == 18
    with pytest.raises(ConfigError, match="loss must be 'mnrl' or 'proxy'"):
        train_faq(path, tmp_path / "other", loss="softmax")
    single = [FAQEntry("how do I feed my cat", "Cat food.", "cat"), FAQEntry("food for a cat", "Cat food.", "cat")]
    with pytest.raises(DataError, match="one answer only"):
        train_faq(single, tmp_path / "single", base_model=str(tiny_model_dir), loss="proxy", show_progress=False)


def test_proxy_data_starts_each_proxy_at_its_groups_mean_embedding(tiny_model_dir):
    import numpy as np

    from sentsim.data import PairData
    from sentsim.training import _proxy_data

    model = sentsim.load(tiny_model_dir, backend="torch")
    texts = ["feed the cat", "cat food", "walk the dog", "dog lead", "a fish tank"]
    groups = ["cat", "cat", "dog", "dog", "fish"]
    data = PairData(texts, texts, None, "none", "test", [1, 2, 3, 4, 5], None, groups=groups)
    dataset, proxies = _proxy_data(data, model)
    assert dataset.column_names == ["sentence1", "label"] and dataset["label"] == [0, 0, 1, 1, 2]
    emb = model.encode(texts)
    for code, rows in enumerate(([0, 1], [2, 3], [4])):
        mean = emb[rows].mean(axis=0)
        np.testing.assert_allclose(proxies[code], mean / np.linalg.norm(mean), atol=1e-5)


def test_proxy_data_takes_given_starting_vectors_and_embeds_only_the_rest(tiny_model_dir, monkeypatch):
    import numpy as np

    from sentsim.data import PairData
    from sentsim.model import SiameseModel
    from sentsim.training import TrainConfig, _proxy_data

    model = sentsim.load(tiny_model_dir, backend="torch")
    texts = ["feed the cat", "cat food", "walk the dog", "dog lead"]
    data = PairData(texts, texts, None, "none", "test", [1, 2, 3, 4], None, groups=["cat", "cat", "dog", "dog"])
    embedded = []
    real = SiameseModel.encode
    monkeypatch.setattr(SiameseModel, "encode", lambda self, s, **kw: embedded.extend(s) or real(self, s, **kw))
    given = np.arange(model.dimension, dtype=np.float32) + 1
    _, proxies = _proxy_data(data, model, {"cat": given})
    assert embedded == ["walk the dog", "dog lead"]  # the cat questions are not embedded again
    np.testing.assert_allclose(proxies[0], given / np.linalg.norm(given), rtol=1e-6)
    dog = real(model, texts[2:]).mean(axis=0)
    np.testing.assert_allclose(proxies[1], dog / np.linalg.norm(dog), atol=1e-5)
    with pytest.raises(ConfigError, match="group.*the pairs do not have, e.g. 'fish'"):
        _proxy_data(data, model, {"fish": given})
    with pytest.raises(ConfigError, match="group 'cat' has 3 values; the model embeds in"):
        _proxy_data(data, model, {"cat": [1.0, 2.0, 3.0]})
    with pytest.raises(ConfigError, match="starting vectors of loss 'proxy', not of loss 'mnrl'"):
        TrainConfig(train=data, output_dir="unused", loss="mnrl", proxies={"cat": given})


def test_faq_train_with_the_proxy_loss_embeds_the_faq_once_before_training(tmp_path, tiny_model_dir, monkeypatch):
    """The figures before training and the proxies' starting vectors come from one embedding of the FAQ."""
    from sentsim.model import SiameseModel

    path, _ = animal_faq(tmp_path)
    question = read_faq(path)[0].question
    embedded = []
    real = SiameseModel.encode
    monkeypatch.setattr(SiameseModel, "encode", lambda self, s, **kw: embedded.extend(s) or real(self, s, **kw))
    train_faq(path, tmp_path / "m", base_model=str(tiny_model_dir), loss="proxy", epochs=1, batch_size=6,
              show_progress=False)  # fmt: skip
    assert embedded.count(question) == 2  # once by the starting model, once by the trained one (the figures after)


def test_resume_loads_the_proxies_from_the_checkpoint(tmp_path, tiny_model_dir, caplog):
    """A checkpoint keeps the proxy loss's vectors, and a resumed run starts from them, not from the group means:
    finishing the last epoch from the first epoch's checkpoint gives the model the uninterrupted run gave."""
    import logging
    import shutil

    import numpy as np
    from safetensors.numpy import load_file

    from sentsim.data import PairData
    from sentsim.training import LOSS_PARAMETERS

    entries = read_faq(animal_faq(tmp_path)[0])
    questions = [e.question for e in entries]
    data = PairData(questions, questions, None, "none", "faq", list(range(1, len(questions) + 1)), None,
                    groups=[e.id for e in entries])  # fmt: skip
    settings = dict(train=data, loss="proxy", base_model=str(tiny_model_dir), epochs=2, batch_size=6,
                    learning_rate=1e-3, show_progress=False, keep_checkpoints=True)  # fmt: skip
    whole = sentsim.train(output_dir=tmp_path / "whole", **settings)
    checkpoints = sorted((tmp_path / "whole.checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name for p in checkpoints] == ["checkpoint-3", "checkpoint-6"]
    first, last = (load_file(str(c / LOSS_PARAMETERS))["proxies"] for c in checkpoints)
    assert first.shape == (len(ANIMALS), whole.model.dimension) and not np.allclose(first, last)
    # a run killed after its first epoch: the first checkpoint only, no model yet
    shutil.copytree(checkpoints[0], tmp_path / "cut.checkpoints" / checkpoints[0].name)
    with caplog.at_level(logging.INFO, logger="sentsim.training"):
        resumed = sentsim.train(output_dir=tmp_path / "cut", resume=True, **settings)
    assert "loaded the loss's own weights (proxies)" in caplog.text
    np.testing.assert_allclose(resumed.model.encode(questions), whole.model.encode(questions), atol=1e-5)
    # a checkpoint from before this change (no loss weights) still resumes, with a warning
    shutil.rmtree(tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut.checkpoints", ignore_errors=True)
    shutil.copytree(checkpoints[0], tmp_path / "cut.checkpoints" / checkpoints[0].name)
    (tmp_path / "cut.checkpoints" / checkpoints[0].name / LOSS_PARAMETERS).unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sentsim.training"):
        sentsim.train(output_dir=tmp_path / "cut", resume=True, **settings)
    assert f"no {LOSS_PARAMETERS}, so the loss's own weights start again" in caplog.text


def test_proxy_loss_needs_groups_one_clear_line(tmp_path, capsys):
    """Pairs from a file carry no groups: the library says so in one line, and ``sentsim train`` does not offer it."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2\na cat,a kitten\na dog,a puppy\n")
    with pytest.raises(DataError, match="loss 'proxy' learns one vector per group") as caught:
        sentsim.train(train=str(pairs), loss="proxy", output_dir=tmp_path / "m", show_progress=False)
    assert "\n" not in str(caught.value)
    argv = ["-q", "train", "--train", str(pairs), "--loss", "proxy", "--output-dir", str(tmp_path / "m")]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and "invalid choice: 'proxy'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_cli_faq_train_with_the_proxy_loss(tmp_path, tiny_model_dir, capsys):
    path, queries = animal_faq(tmp_path)
    argv = ["-q", "faq", "train", "--faq", str(path), "--output-dir", str(tmp_path / "m"), "--base-model",
            str(tiny_model_dir), "--epochs", "1", "--batch-size", "6", "--loss", "proxy"]  # fmt: skip
    assert main(argv + ["--proxy-margin", "0.2"]) == 0
    assert "top-1 before:" in capsys.readouterr().out
    training = sentsim.load(tmp_path / "m").config.training
    assert training["loss"] == "proxy" and training["settings"]["proxy_margin"] == 0.2
    for bad in ("1", "-0.1", "nan"):
        assert main(argv + ["--overwrite", "--proxy-margin", bad]) == 2
        assert f"proxy_margin must be in [0, 1), not {float(bad)!r}" in capsys.readouterr().err
    mnrl = ["-q", "faq", "train", "--faq", str(path), "--output-dir", str(tmp_path / "n"), "--proxy-margin", "0.2"]
    assert main(mnrl) == 2
    assert "proxy_margin is a setting of loss 'proxy', not of loss 'mnrl'" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()


def test_the_proxy_margin_asks_each_question_to_beat_the_other_answers_by_that_much():
    """With margin m a question whose own cosine leads by less than m still has a large loss, and one that leads
    by more than m a small one; margin 0 is the plain loss."""
    import torch

    from sentsim.losses import proxy_softmax
    from sentsim.training import TrainConfig

    proxies = torch.eye(2)
    near = torch.nn.functional.normalize(torch.tensor([[1.0, 0.8]]), dim=-1)  # cosines 0.78 and 0.62: leads by 0.16
    far = torch.tensor([[1.0, 0.0]])  # leads by 1
    label = torch.tensor([0])
    plain, margin = proxy_softmax(torch.nn.Identity(), proxies), proxy_softmax(torch.nn.Identity(), proxies, margin=0.3)
    assert plain.compute_loss_from_embeddings(near, label) < 0.01 < margin.compute_loss_from_embeddings(near, label)
    assert margin.compute_loss_from_embeddings(far, label) < 1e-6
    lead = 30 * (0.78086 - 0.62469 - 0.3)  # the logit gap left after the margin
    expected = float(torch.nn.functional.softplus(torch.tensor(-lead)))
    assert abs(margin.compute_loss_from_embeddings(near, label).item() - expected) < 1e-3
    with pytest.raises(ConfigError, match=r"proxy_margin must be in \[0, 1\), not 1"):
        proxy_softmax(torch.nn.Identity(), proxies, margin=1)
    with pytest.raises(ConfigError, match="proxy_margin is a setting of loss 'proxy', not of loss 'mnrl'"):
        TrainConfig(train="x.csv", output_dir="o", loss="mnrl", proxy_margin=0.1)
