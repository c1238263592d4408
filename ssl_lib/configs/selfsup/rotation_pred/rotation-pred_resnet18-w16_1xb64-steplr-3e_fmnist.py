# Rotation Prediction sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem.
_base_ = [
    '../_base_/models/rotation-pred.py',
    '../_base_/datasets/fmnist_rotation-pred.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    head=dict(in_channels=128))
data = dict(samples_per_gpu=64)
optimizer = dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4)
lr_config = dict(policy='step', step=[2])
runner = dict(max_epochs=3)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
