"""Distilling into the LSTM (sentsim.distill), reading unlabelled sentences, and the length-grouped LSTM encoder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import sentsim
from sentsim.backends import lstm_runs_in_bf16
from sentsim.data import read_pairs, read_sentences
from sentsim.encoders import build_lstm, new_model
from sentsim.errors import ConfigError, DataError, OutputExistsError
from sentsim.recurrent import GroupedLSTM
from tests.conftest import data_path

TEXTS = [
    "A man plays a guitar.",
    "",
    "word " * 80,  # longer than max_seq_length: truncated the way WordEmbeddings truncates
    "Someone is playing a guitar on stage tonight.",
    "ok",
    "Two dogs run.",
    "Three cats sleep.",  # the same token length as the line above: one group
]


def _plain(model: sentsim.SiameseModel, texts: list[str]) -> np.ndarray:
    return model.encoder.encode(texts, batch_size=3, normalize_embeddings=True, convert_to_numpy=True)


def test_grouped_lstm_gives_the_embeddings_sentence_transformers_gives(tiny_model_dir):
    model = build_lstm(tiny_model_dir, hidden_dim=8, max_seq_length=16)
    ours = model.encode(TEXTS, batch_size=2)
    assert isinstance(model._grouped, GroupedLSTM)
    np.testing.assert_allclose(ours, _plain(model, TEXTS), atol=1e-5)
    np.testing.assert_allclose(model.encode(TEXTS[0]), ours[0], atol=1e-6)
    assert len({tuple(np.round(row, 4)) for row in ours}) == len(TEXTS)  # no row left unwritten or copied
    with __import__("torch").no_grad():  # weights changed in place (as training does): the next encode follows
        model.encoder[1].encoder.weight_hh_l0.add_(0.5)
    changed = model.encode(TEXTS, batch_size=2)
    assert np.abs(changed - ours).max() > 1e-3
    np.testing.assert_allclose(changed, _plain(model, TEXTS), atol=1e-5)


def test_grouped_lstm_runs_its_batches_on_threads_and_gives_them_back(tiny_model_dir, monkeypatch):
    import torch

    model = build_lstm(tiny_model_dir, hidden_dim=8, max_seq_length=16)
    texts = TEXTS * 5 + [f"sentence {i} " * (i % 9) for i in range(30)]  # many lengths: many batches
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        two = model.encode(texts, batch_size=4)  # batches dealt to 2 threads
        assert torch.get_num_threads() == 2  # each worker ran on 1 thread; the caller's setting is back
        torch.set_num_threads(1)
        one = model.encode(texts, batch_size=4)  # one thread: the batches run in turn
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(two, one, atol=1e-6)
    np.testing.assert_allclose(two, _plain(model, texts), atol=1e-5)


@pytest.mark.skipif(
    not lstm_runs_in_bf16(),
    reason="torch's oneDNN LSTM in bf16 fails on a CPU without native bf16 (AVX-512 BF16, AMX); see the next test",
)
def test_grouped_lstm_in_bf16_stays_within_0_99_of_fp32_and_reloads_so(tiny_model_dir, tmp_path):
    model = build_lstm(tiny_model_dir, hidden_dim=32, max_seq_length=32)
    texts = TEXTS + [f"sentence number {i} about topic {i % 7}" for i in range(40)]
    fp32 = model.encode(texts, batch_size=8)
    fast = model.set_backend("torch-bf16").encode(texts, batch_size=8)
    assert fast.dtype == np.float32 and model.backend == "torch-bf16"
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)  # pooled and normalised in fp32
    cos = (fp32 * fast).sum(axis=1)
    assert cos.min() >= 0.99 and np.abs(fast - fp32).max() > 0, cos.min()  # bf16 did run, and stayed close
    folder = model.save(tmp_path / "student")
    again = sentsim.load(folder, device="cpu")
    assert again.backend == "torch-bf16" and again.config.backend == "torch-bf16"
    np.testing.assert_allclose(again.encode(texts, batch_size=8), fast, atol=1e-6)
    assert sentsim.load(folder, device="cpu", backend="torch").backend == "torch"


def test_torch_bf16_lstm_where_torch_cannot_run_it_is_a_clear_error_and_a_saved_one_falls_back(
    tiny_model_dir, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr("sentsim.backends.lstm_runs_in_bf16", lambda: False)  # as on an AVX2-only CPU
    model = build_lstm(tiny_model_dir, hidden_dim=8, max_seq_length=32)
    before = (model.backend, model.config.backend)
    with pytest.raises(ConfigError, match="cannot run this LSTM encoder in bfloat16 on this CPU.*backend='torch'"):
        model.set_backend("torch-bf16")
    assert (model.backend, model.config.backend) == before  # the failed call changed nothing
    model.config.backend = "torch-bf16"  # as saved on a CPU with native bf16
    folder = model.save(tmp_path / "student")
    with caplog.at_level("WARNING", logger="sentsim.model"):
        again = sentsim.load(folder, device="cpu")
    assert again.backend == "torch" and again.config.backend == "torch-bf16"  # the saved choice is kept
    assert "running it in fp32" in caplog.text
    np.testing.assert_allclose(again.encode(TEXTS), model.encode(TEXTS), atol=1e-6)
    with pytest.raises(ConfigError, match="cannot run this LSTM"):  # asked for by name: an error, not a fallback
        sentsim.load(folder, device="cpu", backend="torch-bf16")
    transformer = sentsim.load(tiny_model_dir, backend="torch")
    assert transformer.set_backend("torch-bf16").backend == "torch-bf16"  # a transformer still may


def test_grouped_lstm_is_only_used_for_the_lstm_layout(tiny_model_dir):
    transformer = sentsim.load(tiny_model_dir)
    transformer.encode(["hello"])
    assert transformer._grouped is False
    lstm = build_lstm(tiny_model_dir, hidden_dim=4)
    lstm.encoder.train()
    lstm.encode(["hello there"])
    assert lstm.encoder.training  # encoding in eval mode leaves a training model training


def _agreement(student, teacher, texts: list[str]) -> float:
    """Mean cosine between the student's and the teacher's embedding of each sentence."""
    return float(np.mean(np.sum(student.encode(texts) * teacher.encode(texts), axis=1)))


def test_distill_learns_the_teachers_embeddings_and_saves(tiny_model_dir, tmp_path):
    train = read_pairs(data_path("stsb", "train.csv"), score_range=(0, 5), max_rows=400)
    held_out = read_pairs(data_path("stsb", "dev.csv"), score_range=(0, 5), max_rows=200)
    seen, unseen = train.sentence1[:200], held_out.sentence1 + held_out.sentence2
    teacher = sentsim.load(tiny_model_dir)
    untrained = build_lstm(tiny_model_dir, hidden_dim=16)
    before_seen, before_unseen = _agreement(untrained, teacher, seen), _agreement(untrained, teacher, unseen)
    result = sentsim.distill(
        texts=train.sentence1 + train.sentence2,
        teacher=teacher,
        dev=held_out,
        output_dir=tmp_path / "student",
        epochs=4,
        batch_size=32,
        learning_rate=5e-3,
        show_progress=False,
    )
    after_seen, after_unseen = _agreement(result.model, teacher, seen), _agreement(result.model, teacher, unseen)
    # measured: 0.19 before, 0.97 after, on trained and on held-out sentences alike
    assert after_seen > 0.9 and after_seen > before_seen + 0.5, (before_seen, after_seen)
    assert after_unseen > 0.9 and after_unseen > before_unseen + 0.5, (before_unseen, after_unseen)
    assert result.sentences == len(set(train.sentence1 + train.sentence2))
    assert set(result.dev_metrics) == {"spearman", "pearson"} and result.teacher_dev and result.dev_before
    saved = sentsim.load(tmp_path / "student")
    assert saved.config.encoder == "lstm" and saved.dimension == teacher.dimension
    assert saved.config.training["kind"] == "distillation" and saved.config.training["sentences"] == result.sentences
    assert saved.config.thresholds  # chosen on the dev pairs
    np.testing.assert_allclose(saved.encode(TEXTS), result.model.encode(TEXTS), atol=1e-6)
    # fine-tuning starts from the student itself, not from a fresh LSTM
    resumed = new_model("lstm", str(tmp_path / "student"))
    np.testing.assert_allclose(resumed.encode(TEXTS), saved.encode(TEXTS), atol=1e-6)


def test_distill_rejects_bad_settings_before_any_work(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="nothing to distill"):
        sentsim.distill(output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="list of sentences"):
        sentsim.distill(texts="one string", output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="distance"):
        sentsim.distill(texts=["a"], distance="kl", output_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="must match"):
        sentsim.distill(texts=["a b"], teacher=str(tiny_model_dir), hidden_dim=5, output_dir=tmp_path / "a")
    with pytest.raises(DataError, match="only blank"):
        sentsim.distill(texts=["  ", ""], teacher=str(tiny_model_dir), output_dir=tmp_path / "a")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("saved work")
    with pytest.raises(OutputExistsError):
        sentsim.distill(texts=["a"], output_dir=tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "saved work"


def test_read_sentences_formats(tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("first one\n\n  second one  \nfirst one\n", encoding="utf-8")
    assert read_sentences(txt) == ["first one", "second one"]
    assert read_sentences(txt, max_rows=1) == ["first one"]
    msrp = read_sentences(data_path("msrp", "dev.tsv"))  # BOM, CRLF, '#1 String' and '#2 String' columns
    pairs = read_pairs(data_path("msrp", "dev.tsv"))
    # row by row, first sentence then second, each sentence once
    assert msrp == list(dict.fromkeys(s for row in zip(pairs.sentence1, pairs.sentence2) for s in row))
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"question": "How do I pay?", "answer": "Card."}\n{"question": "Refunds?", "answer": "No."}\n')
    assert read_sentences(jsonl) == ["How do I pay?", "Refunds?"]
    assert read_sentences(jsonl, columns="question,answer") == ["How do I pay?", "Card.", "Refunds?", "No."]
    plain = tmp_path / "p.csv"
    plain.write_text("a,1\nb,2\n")
    assert read_sentences(plain, columns="0") == ["a", "b"]
    assert read_sentences(plain) == ["a", "b"]  # headerless with a number column: the other columns
    stsb = read_sentences(data_path("stsb", "dev.csv"))  # no header: sentence, sentence, score
    dev = read_pairs(data_path("stsb", "dev.csv"), score_range=(0, 5))
    assert stsb == list(dict.fromkeys(s for row in zip(dev.sentence1, dev.sentence2) for s in row))


@pytest.mark.parametrize(
    ("name", "content", "columns", "message"),
    [
        ("empty.txt", "", None, "the file is empty"),
        ("labels.csv", "id,category\n1,card\n", None, "no sentence column"),
        ("numbers.csv", "1,2\n3,4\n", None, "no sentence column"),
        ("gap.csv", "text,category\nhello,a\n ,b\n", None, "row 3.*empty"),
        ("named.csv", "text,category\nhello,a\n", "body", "no column 'body'"),
        ("num.jsonl", '{"text": 5}\n', None, "expected text"),
    ],
)
def test_read_sentences_bad_files_name_the_problem(tmp_path, name, content, columns, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        read_sentences(path, columns=columns)
    assert name in str(err.value)


def test_cli_distill_bad_input_is_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    for args in ([str(tmp_path / "missing.txt")], [str(empty)]):
        run = subprocess.run(
            [sys.executable, "-m", "sentsim.cli", "distill", *args, "--output-dir", str(tmp_path / "out")],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 2, run.stderr
        lines = [line for line in run.stderr.splitlines() if line.startswith("sentsim: error:")]
        assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert args[0] in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_distill_end_to_end(tiny_model_dir, tmp_path):
    sentences = tmp_path / "s.txt"
    sentences.write_text("\n".join(f"sentence number {i} about {w}" for i, w in enumerate(["cats", "dogs"] * 20)))
    run = subprocess.run(
        [sys.executable, "-m", "sentsim.cli", "distill", str(sentences), "--teacher", str(tiny_model_dir),
         "--output-dir", str(tmp_path / "out"), "--epochs", "1", "--no-progress"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "distilled on 40 sentences" in run.stdout
    config = json.loads((tmp_path / "out" / "sentsim_config.json").read_text())
    assert config["encoder"] == "lstm" and config["training"]["kind"] == "distillation"
