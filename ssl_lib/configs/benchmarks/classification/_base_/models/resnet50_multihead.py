# The seed's multi-head linear model: linear heads on feat1..feat5 of a frozen ResNet-50 (stem and the 4
# stages; `in_indices` 0 = stem), each map average-pooled to 12 / 6 / 4 / 3 / 2 per side (9216 / 9216 / 8192 /
# 9216 / 8192 dims), BN without affine, a Linear. The backbone is the backbone artifact's (backbone.json),
# frozen: eval mode, no gradients (the seed's frozen_stages=4). The seed pools with fixed kernels
# (pool_type='specified'); here both pool types are adaptive to the same sizes.
model = dict(
    type='Classification',
    head=dict(
        type='MultiClsHead',
        pool_type='specified',
        in_indices=[0, 1, 2, 3, 4],
        with_last_layer_unpool=False,
        backbone='resnet50',
        norm_cfg=dict(type='SyncBN', momentum=0.1, affine=False),
        num_classes=1000))
