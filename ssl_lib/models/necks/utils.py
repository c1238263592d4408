"""What several necks share."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def last_flat(x: tuple[torch.Tensor, ...], with_avg_pool: bool) -> torch.Tensor:
    """The last feature map of a backbone's tuple, average-pooled (optionally) and flattened."""
    x = x[-1]
    if with_avg_pool:
        x = F.adaptive_avg_pool2d(x, 1)
    return x.flatten(1)
