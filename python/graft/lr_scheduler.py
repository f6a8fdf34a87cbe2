"""Learning-rate schedules with torch.optim.lr_scheduler's formulas, for anything with a
`learning_rate` property: graft.training.TrainingSession or graft.training.api.Optimizer (which
also has onnxruntime's LinearLRScheduler). Call `step()` after each optimizer step, as in PyTorch."""

from __future__ import annotations

import math


class LRScheduler:
    def __init__(self, session) -> None:
        self.session = session
        self.base_lr = session.learning_rate
        self.last_epoch = 0
        session.learning_rate = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self.session.learning_rate = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [self.session.learning_rate]

    def state_dict(self) -> dict:
        """The schedule's position and base rate, as torch's schedulers return them: saved beside
        a checkpoint, so a resumed run continues the schedule (the checkpoint holds the current
        rate, not the base one or the step count of the schedule)."""
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict) -> None:
        """Continues the schedule from `state_dict()`'s; the session's current rate is left as
        it is (a loaded checkpoint restored it), as torch's load_state_dict leaves the
        optimizer's."""
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])


class ConstantLR(LRScheduler):
    """factor * lr for the first `total_iters` steps, then lr."""

    def __init__(self, session, factor: float = 1.0 / 3, total_iters: int = 5) -> None:
        self.factor, self.total_iters = factor, total_iters
        super().__init__(session)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * (self.factor if epoch < self.total_iters else 1.0)


class LinearLR(LRScheduler):
    """Linear warmup from start_factor * lr to end_factor * lr over `total_iters` steps."""

    def __init__(self, session, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5) -> None:
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(session)

    def lr_at(self, epoch: int) -> float:
        t = min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * t)


class StepLR(LRScheduler):
    """lr * gamma ** (epoch // step_size)."""

    def __init__(self, session, step_size: int, gamma: float = 0.1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(session)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """eta_min + (lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, session, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(session)

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2
