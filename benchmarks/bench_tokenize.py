"""Tokenizer throughput on the default corpus: fit time and encode/decode MB/s per tokenizer.

    python -m benchmarks.bench_tokenize [--text data/text/shakespeare/train.txt] [--repeat 3]

MB are megabytes of UTF-8 text. The baseline in the same run is a plain `str.split()` over
the same text (the least work any word-level tokenizer can do), so the ratios travel across
machines better than the absolute numbers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.config import load_params
from pipeline.tokenizers import KINDS, train_tokenizer


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", default="data/text/shakespeare/train.txt")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    text = Path(args.text).read_text(encoding="utf-8")
    mb = len(text.encode("utf-8")) / 1e6
    cfg = load_params().tokenizers

    base_s, _ = best_of(args.repeat, text.split)
    print(f"text: {args.text} ({mb:.2f} MB); baseline str.split: {mb / base_s:.1f} MB/s\n")
    print("| tokenizer | vocab | fit s | encode MB/s | decode MB/s | encode / str.split |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in KINDS:
        fit_s, tok = best_of(1 if kind == "subword" else args.repeat,
                             lambda: train_tokenizer(kind, text, getattr(cfg, kind)))
        enc_s, ids = best_of(args.repeat, lambda: tok.encode(text))
        dec_s, _ = best_of(args.repeat, lambda: tok.decode(ids))
        print(f"| {kind} | {tok.vocab_size} | {fit_s:.2f} | {mb / enc_s:.1f} | {mb / dec_s:.1f} "
              f"| {base_s / enc_s:.2f} |")


if __name__ == "__main__":
    main()
