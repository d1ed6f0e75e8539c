"""Benchmark: our modified Kneser-Ney estimator against NLTK's KneserNeyInterpolated, and the
whole ngram stage process against an older commit and KenLM's lmplz.

    python -m benchmarks.bench_ngram [--text FILE] [--orders 3 5] [--scale-tokens 1000000] [--repeats 3]
    python -m benchmarks.bench_ngram --stage [--input tinyshakespeare.txt] [--baseline abe70c3]
        [--orders 5 3] [--repeats 5]

Text: data/text/shakespeare/train.txt by default, one sentence per line (blank lines are
dropped), tested on the test.txt beside it; any other file holds out every 20th line as test.
Both models see the same tokens: words outside the word tokenizer's default vocabulary (10k,
fitted on the train lines) are <unk> for both.

Two times per fit. "fit" starts from tokens, as the ngram stage does (it estimates on the
tokenize stage's ids): ours from the word tokenizer's ids, NLTK from lists of word strings.
"text" starts from the raw train text: ours encodes it (`NgramVocab.encode`), NLTK splits
the lines and maps unknown words. Each fit runs in --repeats fresh (spawned) processes and
the least time counts, for both sides. Memory is the peak RSS during the fit ("peak", the
high-water mark reset just before it through Linux /proc/self/clear_refs) and its growth
over the RSS at the start ("+").

NLTK scores at ~20-80 ms per n-gram, so perplexities compare on a sample of test sentences
(about --sample n-grams) on which NLTK's is finite; ours is also given on the whole test text
(scored through the evaluator, which also times our scoring). The last table fits our
models on --scale-tokens or more tokens: copies of the train text with the words permuted in
each copy (same statistics, new n-grams).

--stage: the `python -m stages.ngram <corpus> <order>` process, as DVC runs it, in a temporary
project whose corpus is --input (Tiny Shakespeare by default) through the `local` source, run
through the real download, prepare and tokenize stages (default params, tracking off: its side
process is benchmarks/bench_tracking.py's subject). Three commands take turns, --repeats
rounds: this checkout's stage, the stage of --baseline (a `git archive` of that commit, run
on the same data), and lmplz if it is on PATH (else NOTES.md's figure is quoted) on the very
token stream the stage estimates on: one line per sentence, the tokenizer's unknown words
written `<oov>` (lmplz refuses a literal `<unk>`), `-S 10%` (its default, 80% of memory, costs
it seconds of page faults), `--discount_fallback` (the stage's fallback). Wall time is the
least of the rounds (the median beside it), CPU time the user + sys of that round's process
and its threads: on a busy machine the steadier figure. The breakdown comes from extra rounds
of the same stage in a harness process that times its imports and wraps `estimate`, the
scorer and `evaluate`, and `write_arpa`; "rest" is that process' wall time less those
(interpreter start and exit, params, loading data, metrics).

lmplz: KenLM's source builds it, e.g. the kenlm sdist (`pip download --no-binary :all:
--no-deps --no-build-isolation kenlm`) holds lm/builder: with cmake, a C++ compiler, Boost
(program_options, system, thread) and zlib, `cmake -B build . && make -C build lmplz`.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import chdir, nullcontext
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import WordTokenizerConfig  # noqa: E402
from pipeline.evaluation import evaluate  # noqa: E402
from pipeline.ngram import NgramScorer, NgramVocab, estimate, write_arpa  # noqa: E402
from pipeline.ngram.vocab import RESERVED  # noqa: E402
from pipeline.tokenizers import WordTokenizer  # noqa: E402

DEFAULT_TEXT = Path("data/text/shakespeare/train.txt")
TINY_SHAKESPEARE = ROOT.parent / "shared/corpora/tinyshakespeare/input.txt"
LMPLZ_NOTES_S = 0.8  # NOTES.md: lmplz, order 5 on 214k word tokens, this 2-core machine


def read_lines(path: Path) -> list[str]:
    return [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _status(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def reset_peak() -> float:
    """Reset this process' peak RSS (Linux clear_refs) and return its current RSS, MiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


def peak() -> float:
    return _status("VmHWM")


def ours(tok: WordTokenizer, train: str, order: int, score_text: str, sample: list[str], tmp: str) -> dict:
    """Fit from the train text's token ids (as the ngram stage does, on the tokenize stage's
    output) and, for the from-text figure, time encoding the text itself."""
    vocab = NgramVocab.from_tokenizer(tok, "word")
    ids = tok.encode(train)  # the tokenize stage's work, not timed
    start = time.perf_counter()
    from_text = vocab.encode(train)[0]
    encode_s = time.perf_counter() - start
    base, start = reset_peak(), time.perf_counter()
    stream = vocab.from_token_ids(tok, ids)
    convert_s = time.perf_counter() - start
    fit = estimate(vocab, stream, order)
    fit_s, top = time.perf_counter() - start, peak()
    assert np.array_equal(stream, from_text)
    start = time.perf_counter()
    write_arpa(fit.model, tmp)
    arpa_s = time.perf_counter() - start
    start = time.perf_counter()
    scored = evaluate(NgramScorer(fit.model, "word"), score_text, 50)
    score_s = time.perf_counter() - start
    stream, _ = vocab.encode("\n".join(sample) + "\n")
    lp = fit.model.logprob10(stream)  # per-sentence sums, for the NLTK comparison
    per_sentence = np.add.reduceat(np.nan_to_num(lp), np.flatnonzero(stream == vocab.bos_id))
    return dict(
        fit_s=fit_s,
        text_fit_s=encode_s + fit_s - convert_s,
        peak=top,
        grow=top - base,
        arpa_s=arpa_s,
        score_s=score_s,
        score_tokens=scored["n_tokens"],
        test_ppl=scored["word_ppl"],
        n_params=fit.model.n_params,
        tokens=fit.n_tokens,
        log10=per_sentence.tolist(),
    )


def nltk_fit_and_score(train_text: str, known: set[str], order: int, sample: list[list[str]]) -> dict:
    """Like `ours`: the fit timed from token lists, text -> token lists (same vocabulary,
    other words -> <UNK>) timed apart. Scores `sample` unless it is empty."""
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    start = time.perf_counter()
    train = [[w if w in known else "<UNK>" for w in line.split()] for line in train_text.splitlines()]
    text_s = time.perf_counter() - start
    base, start = reset_peak(), time.perf_counter()
    lm = KneserNeyInterpolated(order)
    lm.fit(*padded_everygram_pipeline(order, train))
    fit_s, top = time.perf_counter() - start, peak()
    start, log2, n = time.perf_counter(), [], 0
    for s in sample:
        padded = ["<s>"] * (order - 1) + s + ["</s>"]
        try:
            log2.append(
                sum(lm.logscore(padded[i], padded[i - order + 1 : i]) for i in range(order - 1, len(padded)))
            )
        except ZeroDivisionError:
            log2.append(-math.inf)
        n += len(s) + 1
    return dict(
        fit_s=fit_s,
        text_fit_s=text_s + fit_s,
        peak=top,
        grow=top - base,
        ms_per_ngram=1000 * (time.perf_counter() - start) / max(n, 1),
        log2=log2,
    )


def permuted_copies(train: list[str], symbols: list[str], copies: int) -> str:
    """`copies` copies of the train lines, each but the first with its in-vocabulary words
    permuted: the same statistics (and vocabulary), but new n-grams, as a bigger corpus has."""
    words = [w for w in symbols if w not in RESERVED]
    rng, out = np.random.default_rng(1), ["\n".join(train)]
    for _ in range(copies - 1):
        perm = dict(zip(words, rng.permutation(words).tolist()))
        out.append("\n".join(" ".join(perm.get(w, w) for w in line.split()) for line in train))
    return "\n".join(out) + "\n"


def in_fresh_process(fn, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def best_of(repeats: int, run) -> dict:
    """run(0), .., run(repeats - 1): the first result, with each time (`*_s`) the least seen
    (the least disturbed by the rest of the machine)."""
    runs = [run(i) for i in range(repeats)]
    return {**runs[0], **{k: min(r[k] for r in runs) for k in runs[0] if k.endswith("_s")}}


# ----------------------------------------------------------------------------- stage process

# Run in the stage's own interpreter: times the imports, wraps the phases' functions where
# pipeline/ngram/run.py looks them up, runs the stage, prints the seconds per phase as JSON.
HARNESS = """
import time; t0 = time.perf_counter()
import json, sys, warnings
import stages.ngram as stage
import pipeline.ngram.run as run
phases = {"imports": time.perf_counter() - t0}
def timed(name, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
    return wrapper
run.estimate = timed("estimate", run.estimate)
run.NgramScorer, run.evaluate = timed("scoring", run.NgramScorer), timed("scoring", run.evaluate)
run.write_arpa = timed("arpa", run.write_arpa)
warnings.simplefilter("ignore")
stage.main(sys.argv[1:])
print(json.dumps(phases))
"""
PHASES = ("imports", "estimate", "scoring", "arpa")


def timed_process(argv: list[str], cwd: Path, env: dict | None = None, stdin: Path | None = None,
                  stdout: Path | None = None) -> dict:
    """Run a command (stdin, stdout: files, if given); its wall seconds, the CPU seconds (user
    + sys) of it and its children, and its stdout (if not to a file)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as f, open(stdout, "wb") if stdout else nullcontext(subprocess.PIPE) as out:
        r = subprocess.run(argv, cwd=cwd, env=env, stdin=f, stdout=out, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, argv))} failed ({r.returncode}):\n{r.stderr.decode()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"wall": wall, "cpu": cpu, "stdout": r.stdout}


def make_project(tmp: Path, text: Path) -> str:
    """A project in `tmp` whose corpus is `text`, prepared and tokenized by this checkout's
    stages; returns the corpus name."""
    from stages import download, prepare, tokenize  # after sys.path is set

    corpus = "shakespeare"  # the name params.yaml's tune targets expect
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {corpus: {"source": "local", "path": str(text.resolve())}}
    params["tracking"]["enabled"] = False
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with chdir(tmp):
        download.main([corpus])
        prepare.main([corpus])
        tokenize.main([corpus, params["ngram"]["unit"]])
    return corpus


def write_lmplz_input(project: Path, corpus: str, path: Path) -> None:
    """The stage's training stream (the tokenize stage's ids, as `ngram_run` reads them) as
    text for lmplz: one sentence per line, unknown words as `<oov>`."""
    from pipeline import paths
    from pipeline.tokenizers import load_split_ids, load_tokenizer

    with chdir(project):
        unit = yaml.safe_load(Path("params.yaml").read_text())["ngram"]["unit"]
        tok = load_tokenizer(paths.tokenizer_file(corpus, unit))
        vocab = NgramVocab.from_tokenizer(tok, unit)
        stream = vocab.from_token_ids(tok, load_split_ids(corpus, tok, "train"))
    words = np.array(vocab.symbols, dtype=object)
    words[vocab.unk_id] = "<oov>"
    sentences = np.split(words[stream], np.flatnonzero(stream == vocab.bos_id)[1:])
    path.write_text("".join(" ".join(s[1:-1]) + "\n" for s in sentences), encoding="utf-8")


def stage_table(args) -> None:
    text = args.input
    if not text.is_file():
        sys.exit(f"{text}: not found; pass --input FILE")
    lmplz = shutil.which("lmplz")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "project").mkdir()
        corpus = make_project(tmp / "project", text)
        codes = {"this checkout": ROOT}
        if args.baseline:
            base = tmp / "baseline"
            base.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True)
            if archive.returncode != 0:
                sys.exit(f"git archive {args.baseline}: {archive.stderr.decode().strip()}")
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
            codes[args.baseline] = base
        lm_text = tmp / "lmplz-input.txt"
        if lmplz:
            write_lmplz_input(tmp / "project", corpus, lm_text)
        load = os.getloadavg()

        rows: dict[tuple[int, str], dict[str, list]] = {}
        for order in args.orders:
            arpa = tmp / f"project/models/{corpus}-ngram-{order}/model.arpa.gz"
            for _ in range(args.repeats):
                for name, code in codes.items():
                    env = {**os.environ, "PYTHONPATH": str(code)}
                    env.pop("MLFLOW_TRACKING_URI", None)
                    row = rows.setdefault((order, name), {"wall": [], "cpu": [], "phases": []})
                    plain = timed_process([sys.executable, "-m", "stages.ngram", corpus, str(order)],
                                          tmp / "project", env)
                    row["wall"].append(plain["wall"])
                    row["cpu"].append(plain["cpu"])
                    row["mb"] = arpa.stat().st_size / 2**20
                    harness = timed_process([sys.executable, "-c", HARNESS, corpus, str(order)], tmp / "project", env)
                    row["phases"].append({**json.loads(harness["stdout"].splitlines()[-1]), "wall": harness["wall"]})
                if lmplz:
                    run = timed_process([lmplz, "-o", str(order), "-S", "10%", "-T", str(tmp), "--discount_fallback"],
                                        tmp, stdin=lm_text, stdout=tmp / "lmplz.arpa")
                    row = rows.setdefault((order, "lmplz"), {"wall": [], "cpu": [], "phases": []})
                    row["wall"].append(run["wall"])
                    row["cpu"].append(run["cpu"])
                    row["mb"] = (tmp / "lmplz.arpa").stat().st_size / 2**20
            metrics = json.loads((tmp / f"project/results/{corpus}-ngram-{order}.json").read_text())  # the run's full record
            print(f"order {order}: {metrics['train_tokens']:,} train tokens, {metrics['n_params']:,} n-grams")
        load = f"load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end ({os.cpu_count()} CPUs)"

    print(f"\nstage process on {text.name}, tracking off; wall: best of {args.repeats} rounds (median), CPU: "
          f"user + sys of the best round; {load}")
    print(f"lmplz: {lmplz} (plain ARPA)" if lmplz else
          f"lmplz not on PATH: the lmplz rows quote NOTES.md ({LMPLZ_NOTES_S} s for order 5 on 214k tokens here, "
          "order 3 about the same)")
    print("breakdown: the harness round with the least wall time\n")
    print("| order | run | wall s | CPU s | imports s | estimate s | scoring s | ARPA write s | rest s | ARPA MB "
          "| wall / lmplz | CPU / lmplz |")
    print("|---" * 12 + "|")
    for order in args.orders:
        lm = rows.get((order, "lmplz"))
        ref_wall, ref_cpu = (lm["wall"][fastest(lm)], lm["cpu"][fastest(lm)]) if lm else (LMPLZ_NOTES_S, math.nan)
        for name in [*codes, "lmplz"]:
            row = rows.get((order, name))
            if row is None:
                print(f"| {order} | lmplz (NOTES.md) | {LMPLZ_NOTES_S:.2f} | | | | | | | | 1.00 | |")
                continue
            cells = [""] * (len(PHASES) + 1)
            if row["phases"]:
                ph = min(row["phases"], key=lambda p: p["wall"])
                rest = ph["wall"] - sum(ph.get(k, 0.0) for k in PHASES)
                cells = [f"{ph.get(k, 0.0):.2f}" for k in PHASES] + [f"{rest:.2f}"]
            wall, cpu = row["wall"][fastest(row)], row["cpu"][fastest(row)]
            print(f"| {order} | {name} | {wall:.2f} ({statistics.median(row['wall']):.2f}) | {cpu:.2f} | "
                  + " | ".join(cells) + f" | {row['mb']:.1f} | {wall / ref_wall:.2f} | {cpu / ref_cpu:.2f} |")


def fastest(row: dict) -> int:
    """The round with the least wall time."""
    return min(range(len(row["wall"])), key=row["wall"].__getitem__)

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--sample", type=int, default=300, help="test n-grams NLTK scores per order")
    ap.add_argument("--scale-tokens", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per fit; times are the best")
    ap.add_argument("--stage", action="store_true", help="only the stage-process table (see above)")
    ap.add_argument("--input", type=Path, default=TINY_SHAKESPEARE, help="--stage: the corpus text")
    ap.add_argument("--baseline", default="abe70c3", help="--stage: the commit to compare with ('' for none)")
    args = ap.parse_args()
    if args.stage:
        stage_table(args)
        return
    if not args.text.exists():
        sys.exit(f"{args.text}: not found; run the prepare stage or pass --text FILE")
    lines = read_lines(args.text)
    if args.text.name == "train.txt" and args.text.with_name("test.txt").exists():
        train, test = lines, read_lines(args.text.with_name("test.txt"))
    else:
        test, train = lines[::20], [line for i, line in enumerate(lines) if i % 20]
    tok = WordTokenizer.train("\n".join(train), WordTokenizerConfig())  # the word RNN's default vocabulary
    symbols = NgramVocab.from_tokenizer(tok, "word").symbols
    known = set(symbols)

    rng, sample, n = np.random.default_rng(0), [], 0
    for i in rng.permutation(len(test)):  # test sentences until about --sample n-grams
        sample.append(test[i])
        n += len(test[i].split()) + 1
        if n >= args.sample:
            break
    nltk_sample = [[w if w in known else "<UNK>" for w in line.split()] for line in sample]
    train_text, test_text = "\n".join(train) + "\n", "\n".join(test) + "\n"
    score_text = test_text * math.ceil(100_000 / len(test_text.split()))  # ~100k words to time scoring
    arpa = str(Path(tempfile.mkdtemp()) / "model.arpa.gz")  # written to time write_arpa

    print(f"text: {args.text} ({len(train)} train / {len(test)} test lines, vocab {len(symbols)})\n")
    print(f"best of {args.repeats} fresh processes per fit; fit: from token ids, text: from the raw text\n")
    print(
        "| order | train tokens | fit s, ours / NLTK | fit speed-up | text s, ours / NLTK | text speed-up "
        "| peak / + MiB, ours | peak / + MiB, NLTK | ours ARPA write s | ours scoring tokens/s "
        "| NLTK ms / n-gram | sample sentences (NLTK finite) | ours ppl | NLTK ppl | ours ppl, whole test |"
    )
    print("|---" * 15 + "|")
    for order in args.orders:
        o = best_of(args.repeats, lambda i: in_fresh_process(ours, tok, train_text, order, score_text, sample, arpa))
        k = best_of(  # NLTK scores the sample once: at ~50 ms per n-gram
            args.repeats,
            lambda i: in_fresh_process(nltk_fit_and_score, train_text, known, order, [] if i else nltk_sample),
        )
        finite = [j for j, v in enumerate(k["log2"]) if math.isfinite(v)]
        n_tok = sum(len(nltk_sample[j]) + 1 for j in finite)
        ppl_ours = 10 ** (-sum(o["log10"][j] for j in finite) / n_tok)
        ppl_nltk = 2 ** (-sum(k["log2"][j] for j in finite) / n_tok)
        print(
            f"| {order} | {o['tokens']:,} | {o['fit_s']:.3f} / {k['fit_s']:.2f} | {k['fit_s'] / o['fit_s']:.0f}x "
            f"| {o['text_fit_s']:.3f} / {k['text_fit_s']:.2f} | {k['text_fit_s'] / o['text_fit_s']:.0f}x "
            f"| {o['peak']:.0f} / {o['grow']:.0f} | {k['peak']:.0f} / {k['grow']:.0f} | {o['arpa_s']:.2f} | {o['score_tokens'] / o['score_s']:,.0f} | {k['ms_per_ngram']:.1f} "
            f"| {len(sample)} ({len(finite)}) | {ppl_ours:.1f} | {ppl_nltk:.1f} | {o['test_ppl']:.1f} |"
        )

    copies = math.ceil(args.scale_tokens / (len(train_text.split()) + len(train)))
    big = permuted_copies(train, symbols, copies)
    print(f"\nscale: {copies} copies of the train text, words permuted in each copy\n")
    print("| order | train tokens | n-grams | ours fit s | ours text s | ours peak / + MiB | ARPA write s |")
    print("|---" * 7 + "|")
    for order in args.orders:
        s = best_of(args.repeats, lambda i: in_fresh_process(ours, tok, big, order, test_text, sample, arpa))
        print(
            f"| {order} | {s['tokens']:,} | {s['n_params']:,} | {s['fit_s']:.2f} | {s['text_fit_s']:.2f} "
            f"| {s['peak']:.0f} / {s['grow']:.0f} | {s['arpa_s']:.2f} |"
        )
    shutil.rmtree(Path(arpa).parent)


if __name__ == "__main__":
    main()
