# NPID sized for two CPU cores: a quarter-width ResNet-18 (base 16) with
# the small-image stem, on the 10k Fashion-MNIST images of `make run`'s default train subset.
_base_ = [
    '../_base_/models/npid.py',
    '../_base_/datasets/fmnist_npid.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    neg_num=4096,
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, out_channels=128),
    memory_bank=dict(length=10000, feat_dim=128))  # = make run's train subset
data = dict(samples_per_gpu=64)
optimizer = dict(lr=0.03, weight_decay=1e-4)
lr_config = dict(policy='step', step=[6, 8])
runner = dict(max_epochs=10)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
