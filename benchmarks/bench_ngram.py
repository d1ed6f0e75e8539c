"""Benchmark: our modified Kneser-Ney estimator against NLTK's KneserNeyInterpolated.

    python -m benchmarks.bench_ngram [--text FILE] [--orders 3 5] [--scale-tokens 1000000] [--repeats 3]

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
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import WordTokenizerConfig  # noqa: E402
from pipeline.evaluation import evaluate  # noqa: E402
from pipeline.ngram import NgramScorer, NgramVocab, estimate, write_arpa  # noqa: E402
from pipeline.ngram.vocab import RESERVED  # noqa: E402
from pipeline.tokenizers import WordTokenizer  # noqa: E402

DEFAULT_TEXT = Path("data/text/shakespeare/train.txt")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--sample", type=int, default=300, help="test n-grams NLTK scores per order")
    ap.add_argument("--scale-tokens", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per fit; times are the best")
    args = ap.parse_args()
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
