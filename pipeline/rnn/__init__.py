"""RNN language models: the model (model.py), training batches (batching.py), lr schedules
(schedule.py), the training loop (trainer.py) and its exact-resume checkpoints (checkpoint.py).

run.py ties them to a grid member; scorer.py and sampling.py serve the evaluator and samples.
"""
