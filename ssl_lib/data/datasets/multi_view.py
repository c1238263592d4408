"""Datasets that turn a data source into training samples (the seed's MultiView / SingleView)."""
from __future__ import annotations

from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import DATASETS, DATASOURCES, build
from ..transforms import build_pipeline


def build_source(data_source):
    """A data source from its config dict; an already built source is used as it is."""
    return build(data_source, DATASOURCES) if isinstance(data_source, dict) else data_source


@DATASETS.register_module()
class MultiViewDataset(Dataset):
    """`num_views[i]` views of each image through `pipelines[i]`: `dict(img=[views...], label, idx)`."""

    def __init__(self, data_source: dict, num_views: list[int], pipelines: list[list[dict]], prefetch: bool = False):
        # `prefetch` is accepted so seed configs load; decoding always happens in the loader workers here.
        if len(num_views) != len(pipelines):
            raise ConfigError(f"MultiViewDataset: num_views {list(num_views)} needs one pipeline per entry, "
                              f"got {len(pipelines)} pipelines")
        if any(int(n) < 1 for n in num_views):
            raise ConfigError(f"MultiViewDataset: every entry of num_views must be >= 1, got {list(num_views)}")
        self.data_source = build_source(data_source)
        self.num_views = [int(n) for n in num_views]
        self.pipelines = [build_pipeline(p) for p in pipelines]

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        img = self.data_source.get_image(idx)
        views = [pipeline(img) for pipeline, n in zip(self.pipelines, self.num_views) for _ in range(n)]
        return dict(img=views, label=self.data_source.get_label(idx), idx=idx)


@DATASETS.register_module()
class SingleViewDataset(Dataset):
    """One view of each image: `dict(img=tensor, label, idx)`, for evaluation and linear probes."""

    def __init__(self, data_source: dict, pipeline: list[dict]):
        self.data_source = build_source(data_source)
        self.pipeline = build_pipeline(pipeline)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        img = self.pipeline(self.data_source.get_image(idx))
        return dict(img=img, label=self.data_source.get_label(idx), idx=idx)
