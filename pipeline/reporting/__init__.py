"""The ablation report: reports/README.md and a self-contained reports/index.html.

From results/<run>.json and curves/<run>.csv of exactly the runs params.yaml names (RNN grid
members and n-gram baselines, see `expected_runs`; tuned runs, see `collect_tuned`), all scored in test bits/char, the one unit
every LM type shares:

- the best run per LM type;
- per LM type, a pivot of the grid (rows cell, columns dropout x clip), each cell test bits/char
  with word perplexity beneath, the best starred, diverged runs with their epoch;
- main effects: per factor, the mean change in test bits/char from its reference level (the
  first in params.yaml's grid) to each other level, over pairs of runs that differ only there;
- the n-gram baselines, closed-vocabulary figures flagged (their `<unk>` swallows mass that
  open models must spend), and how much training data each kind of model saw;
- learning curves, the cost of each run, a few generated lines of the best run per LM type;
- tuned against default learning-rate schedules, per `tune.targets` entry.

Modules: `runs` (which runs, their metrics, the grid), `analysis` (the tables), `figures`
(matplotlib, imported only when drawing), `markup` (Markdown and HTML), `report` (`render`).
"""

from pipeline.reporting.report import render
from pipeline.reporting.runs import TRAIN_AXES, collect, collect_tuned, expected_runs

__all__ = ["TRAIN_AXES", "collect", "collect_tuned", "expected_runs", "render"]
