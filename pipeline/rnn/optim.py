"""SGD (momentum, weight decay) and Adam, computed as torch.optim computes them one tensor at a
time, without torch.optim.

Why not torch.optim: building any of its optimizers imports torch._dynamo (torch wraps the
optimizer's methods for torch.compile, which this project never uses), about 1.3 s of CPU in
every train stage, a fifth of a short stage's fixed cost. The update rules below are torch's
single-tensor ones (torch/optim/sgd.py, adam.py; dampening 0, no nesterov, no amsgrad), and
tests/test_optim.py checks them against torch.optim step by step, bit for bit.
"""

from __future__ import annotations

import torch

from pipeline.config import OptimConfig

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


class Optimizer:
    """The trainer's optimizer: `lr` is set before each step (the schedule owns it)."""

    def __init__(self, params, cfg: OptimConfig):
        self.params = list(params)
        self.cfg, self.lr = cfg, cfg.lr
        self.state: list[dict] = [{} for _ in self.params]  # per parameter, filled at its first step
        self._update = self._sgd if cfg.name == "sgd" else self._adam

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            grad = p.grad
            if self.cfg.weight_decay:
                grad = grad.add(p, alpha=self.cfg.weight_decay)
            self._update(p, grad, state)

    def _sgd(self, p: torch.Tensor, grad: torch.Tensor, state: dict) -> None:
        if self.cfg.momentum:
            if "momentum" not in state:
                state["momentum"] = grad.detach().clone()
            else:
                state["momentum"].mul_(self.cfg.momentum).add_(grad)
            grad = state["momentum"]
        p.add_(grad, alpha=-self.lr)

    def _adam(self, p: torch.Tensor, grad: torch.Tensor, state: dict) -> None:
        beta1, beta2 = ADAM_BETAS
        if not state:
            state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
        state["step"] += 1  # this parameter's steps: the bias correction counts them
        m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(ADAM_EPS)
        p.addcdiv_(m, denom, value=-self.lr / (1 - beta1**t))

    def state_dict(self) -> dict:
        return {"state": [dict(s) for s in self.state]}

    def load_state_dict(self, sd: dict) -> None:
        if len(sd["state"]) != len(self.params):
            raise ValueError(f"optimizer state for {len(sd['state'])} parameters, the model has {len(self.params)}")
        self.state = [{k: v.to(p.device) if torch.is_tensor(v) else v for k, v in s.items()}
                      for p, s in zip(self.params, sd["state"])]
