"""The trainer's optimizer against torch.optim: the same parameters after every step, bit for bit."""

import pytest
import torch

from pipeline.config import OptimConfig
from pipeline.rnn.optim import Optimizer


def twin_models(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Embedding(11, 6), torch.nn.Linear(6, 11))
    b = torch.nn.Sequential(torch.nn.Embedding(11, 6), torch.nn.Linear(6, 11))
    b.load_state_dict(a.state_dict())
    return a, b


def loss_of(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(model(x[:-1]), x[1:])


@pytest.mark.parametrize("cfg", [
    OptimConfig(name="sgd", lr=0.7),
    OptimConfig(name="sgd", lr=0.3, momentum=0.9, weight_decay=1e-3),
    OptimConfig(name="adam", lr=1e-2),
    OptimConfig(name="adam", lr=3e-3, weight_decay=1e-2),
], ids=["sgd", "sgd-momentum-wd", "adam", "adam-wd"])
def test_every_step_equals_torch_optim(cfg):
    ours, ref = twin_models()
    opt = Optimizer(ours.parameters(), cfg)
    if cfg.name == "sgd":
        torch_opt = torch.optim.SGD(ref.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                    weight_decay=cfg.weight_decay, foreach=False)
    else:
        torch_opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=False)
    gen = torch.Generator().manual_seed(1)
    for step in range(12):
        lr = cfg.lr * 0.8**step  # the schedule sets the lr before each step
        opt.lr = lr
        for group in torch_opt.param_groups:
            group["lr"] = lr
        x = torch.randint(0, 11, (20,), generator=gen)
        for model, o in ((ours, opt), (ref, torch_opt)):
            o.zero_grad()
            loss_of(model, x).backward()
            o.step()
        for p, q in zip(ours.parameters(), ref.parameters()):
            assert torch.equal(p, q), (step, (p - q).abs().max())


def test_state_round_trip_resumes_the_same_steps():
    cfg = OptimConfig(name="adam", lr=1e-2)
    a, b = twin_models()
    xs = [torch.randint(0, 11, (20,), generator=torch.Generator().manual_seed(i)) for i in range(6)]
    opt_a = Optimizer(a.parameters(), cfg)
    for x in xs:
        opt_a.zero_grad()
        loss_of(a, x).backward()
        opt_a.step()
    opt_b = Optimizer(b.parameters(), cfg)
    for i, x in enumerate(xs):
        if i == 3:  # a checkpoint mid-way, loaded into a new optimizer
            sd = opt_b.state_dict()
            opt_b = Optimizer(b.parameters(), cfg)
            opt_b.load_state_dict(sd)
        opt_b.zero_grad()
        loss_of(b, x).backward()
        opt_b.step()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
