"""graft's learning-rate schedules follow torch.optim.lr_scheduler step by step."""

import pytest
import torch

from graft import lr_scheduler


class FakeSession:
    """Only the learning-rate property of a TrainingSession matters here."""

    def __init__(self, lr: float) -> None:
        self.learning_rate = lr


CASES = {
    "constant": (lambda s: lr_scheduler.ConstantLR(s, factor=0.5, total_iters=4),
                 lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=4)),
    "linear": (lambda s: lr_scheduler.LinearLR(s, start_factor=0.1, total_iters=10),
               lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10)),
    "step": (lambda s: lr_scheduler.StepLR(s, step_size=7, gamma=0.5),
             lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)),
    "cosine": (lambda s: lr_scheduler.CosineAnnealingLR(s, T_max=20, eta_min=0.001),
               lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch(name):
    ours_factory, torch_factory = CASES[name]
    sess = FakeSession(0.1)
    ours = ours_factory(sess)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    theirs = torch_factory(opt)
    for step in range(30):
        assert sess.learning_rate == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12), f"step {step}"
        opt.step()
        theirs.step()
        ours.step()


@pytest.mark.parametrize("name", list(CASES))
def test_a_schedule_resumed_from_its_state_dict_continues_as_torchs(name):
    # 12 steps, then a new schedule over a session whose rate a checkpoint restored, continued
    # from the first one's state_dict: the rates follow torch's uninterrupted schedule.
    ours_factory, torch_factory = CASES[name]
    first = FakeSession(0.1)
    schedule = ours_factory(first)
    for _ in range(12):
        schedule.step()
    saved, restored_rate = schedule.state_dict(), first.learning_rate
    resumed = FakeSession(restored_rate)
    continued = ours_factory(resumed)
    resumed.learning_rate = restored_rate  # the checkpoint's rate, as load_checkpoint sets it
    continued.load_state_dict(saved)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    theirs = torch_factory(opt)
    for _ in range(12):
        opt.step()
        theirs.step()
    for step in range(12, 30):
        assert resumed.learning_rate == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12), f"step {step}"
        opt.step()
        theirs.step()
        continued.step()
