"""Optuna tuning of a grid member's learning-rate schedule (stages tune@<target>, train_tuned@<target>).

A *target* (params.yaml `tune.targets`) names a grid member: corpus, LM type, cell, dropout, clip.
Its study searches `tune.space` (dotted keys of the `train` section: lr, schedule kind, rate,
decay steps, ...). Every trial is one `pipeline.rnn.run.train_run` of the target's config with
the trial's values and the per-trial budget (`tune.trial`) merged in, validated by the params
schema: the grid's trainer, evaluator and checkpoints, never a second loop. The trainer's
intermediate valid scores (`tune.report_every`) go to the pruner; a pruned trial stops there.

Modules, from the bottom up:
- `space`    the search space: suggest values (the schedule's keys only where its kind uses
             them), build a trial's params through the schema, read the best params back. No optuna.
- `storage`  where studies live: an SQLAlchemy URL (sqlite by default, PostgreSQL across
             machines), opened with a busy timeout, WAL and locked first contact for sqlite.
- `study`    the study: its name (target + a hash of everything that shapes a trial's value),
             sampler and pruner from params, the trial slots, the worker loop with heartbeats,
             the objective.
- `results`  best params, trials table, summary, plots.
- `run`      what stage tune does: the study's slots, its workers (here or in processes), its
             results, and its MLflow run (the parent of the trials' runs).
- `worker`   `python -m pipeline.tuning.worker`: one worker process (started by the stage).

This package is the only one that imports optuna.
"""
