"""What the pretext-task classifiers (RelativeLoc, RotationPred) share: their datasets give each sample
several inputs with a label each, which the algorithm trains on as one flat batch."""
from __future__ import annotations

import torch

from ...errors import ConfigError


def flatten_pretext_batch(algo: str, dataset: str, img: list[torch.Tensor], labels: torch.Tensor | None,
                          label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`img[0]` [N, K, C, H, W] and `labels` [N, K] -> [N*K, C, H, W] and [N*K], sample by sample, so that
    row n*K + k is the k-th input of sample n and keeps its label."""
    if labels is None:
        raise ConfigError(f"{algo} needs `{label_key}` with each sample; set data.train.type='{dataset}'")
    x = img[0]
    if x.dim() != 5 or labels.shape != x.shape[:2]:
        raise ConfigError(f"{algo}: expects img [N, K, C, H, W] and {label_key} [N, K] from {dataset}, got img "
                          f"{list(x.shape)} and {label_key} {list(labels.shape)}")
    return x.flatten(0, 1), labels.flatten()
