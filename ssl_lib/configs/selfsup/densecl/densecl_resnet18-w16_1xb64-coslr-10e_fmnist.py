# DenseCL sized for two CPU cores: MoCo v2's Fashion-MNIST recipe
# (quarter-width ResNet-18 with the small-image stem, SplitBN, queue 1024, 10k images) plus the dense
# branch on the last 4x4 feature map.
_base_ = [
    '../_base_/models/densecl.py',
    '../_base_/datasets/fmnist_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    queue_len=1024,
    momentum=0.99,
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='SplitBN', num_splits=8)),
    neck=dict(in_channels=128, hid_channels=128, out_channels=128))
data = dict(samples_per_gpu=64)
optimizer = dict(lr=0.06, weight_decay=5e-4)
lr_config = dict(policy='CosineAnnealing', min_lr=0., by_epoch=False)
runner = dict(max_epochs=10)
custom_hooks = [dict(type='DenseCLHook', start_iters=156)]
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
