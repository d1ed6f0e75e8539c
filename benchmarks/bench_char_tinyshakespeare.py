"""Char-LSTM on Tiny Shakespeare, nanoGPT's split, through the pipeline's own stages.

    python -m benchmarks.bench_char_tinyshakespeare [--input ../shared/corpora/tinyshakespeare/input.txt]
        [--hidden 512 --layers 1 --epochs 2 --tokens 1000000]

The first 90% of the characters (cut at a line break) become train, the last 10% valid; test
is the same text as valid. They enter through the `local` corpus source with its own splits,
then run the real download -> prepare -> tokenize -> train stages in a temporary project, so
the number is the pipeline's, not a side script's. Reported: valid nats/char of the best
epoch, wall time, tokens/s, next to nanoGPT's 1.4697 (10.7M-param GPT, GPU).

Note: `prepare` normalizes whitespace and drops blank lines (7% of tinyshakespeare's lines),
so our valid text has fewer, harder characters than nanoGPT's: a fair comparison is, if
anything, tilted against us.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NANOGPT = 1.4697


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=str(ROOT.parent / "shared/corpora/tinyshakespeare/input.txt"))
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=None, help="train tokens per epoch (default: all)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    from pipeline import paths  # after sys.path is set
    from pipeline.io import read_json
    from stages import download, prepare, tokenize, train

    text = Path(args.input).read_text(encoding="utf-8")
    cut = text.rfind("\n", 0, int(len(text) * 0.9)) + 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "src").mkdir()
        (tmp / "src/train.txt").write_text(text[:cut], encoding="utf-8")
        (tmp / "src/valid.txt").write_text(text[cut:], encoding="utf-8")
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        splits = {s: str(tmp / "src" / ("train.txt" if s == "train" else "valid.txt"))
                  for s in ("train", "valid", "test")}
        params["corpora"] = {"tinyshakespeare": {"source": "local", "splits": splits}}
        params["grid"].update(corpus=["tinyshakespeare"], lm=["char"])
        params["train"].update(epochs=args.epochs, max_train_tokens=args.tokens, device=args.device, samples=1)
        params["train_overrides"] = {"char": {
            "model": {"embed_dim": args.hidden, "hidden": args.hidden, "layers": args.layers,
                      "tie_weights": True, "init_scale": 0.05},
            "batching": {"mode": "stream", "batch_size": 32, "bptt": 128},
            "optim": {"name": "adam", "lr": 0.002},
            "schedule": {"kind": "exponential", "rate": 0.1, "decay_steps": args.epochs, "interval": "epoch",
                         "staircase": False, "start_epoch": 0},
        }}
        (tmp / "params.yaml").write_text(yaml.safe_dump(params))
        os.chdir(tmp)
        download.main(["tinyshakespeare"])
        prepare.main(["tinyshakespeare"])
        tokenize.main(["tinyshakespeare", "char"])
        run = paths.run_id("tinyshakespeare", "char", "lstm", args.dropout, 1.0)
        t0 = time.perf_counter()
        train.main(["tinyshakespeare", run, "--lm", "char", "--cell", "lstm",
                    "--dropout", str(args.dropout), "--clip", "1.0"])
        wall = time.perf_counter() - t0
        m = read_json(paths.result_file(run))
        curve = paths.curve_file(run).read_text(encoding="utf-8")

    print(f"\n{curve}")
    print("| model | params | valid nats/char | wall s | train tokens/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| char-LSTM {args.layers}x{args.hidden}, {m['epochs']} epochs (this run) | {m['n_params']:,} "
          f"| {m['valid']['nats_per_char']:.4f} | {wall:.0f} | {m['tokens_per_s']:.0f} |")
    print(f"| nanoGPT shakespeare_char (GPU, published) | 10.7M | {NANOGPT} | | |")


if __name__ == "__main__":
    main()
