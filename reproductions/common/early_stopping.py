"""Early stopping: a training reads a score on held-out data every few steps, keeps the weights of
its best read and stops after ``patience`` reads in a row without a gain."""

from __future__ import annotations

import copy
import math

from torch import nn


class EarlyStopping:
    """``read(score, model)`` after each held-out read (True: stop now); ``restore(model)`` at the end
    loads the best read's weights. A read counts as a gain when it beats the best by more than
    ``min_gain`` (in the score's unit), up for ``higher_is_better`` scores, down for losses."""

    def __init__(self, patience: int, higher_is_better: bool, min_gain: float = 0.0):
        self.patience, self.min_gain = patience, min_gain
        self.sign = 1.0 if higher_is_better else -1.0  # compare every score as "higher is better"
        self.best, self.state, self.waited = -math.inf, None, 0

    def read(self, score: float, model: nn.Module) -> bool:
        if self.sign * score > self.best + self.min_gain:
            self.best, self.state, self.waited = self.sign * score, copy.deepcopy(model.state_dict()), 0
        else:
            self.waited += 1
        return self.waited >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)
