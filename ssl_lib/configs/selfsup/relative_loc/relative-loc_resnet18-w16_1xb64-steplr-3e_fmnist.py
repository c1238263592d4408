# Relative Location sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem.
_base_ = [
    '../_base_/models/relative-loc.py',
    '../_base_/datasets/fmnist_relative-loc.py',
    '../_base_/schedules/sgd_steplr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar'),
    neck=dict(in_channels=128, out_channels=256),
    head=dict(in_channels=256))
data = dict(samples_per_gpu=64)
optimizer = dict(
    type='SGD',
    lr=0.2,
    weight_decay=1e-4,
    momentum=0.9,
    paramwise_options={
        '\\Aneck.': dict(weight_decay=5e-4),
        '\\Ahead.': dict(weight_decay=5e-4)
    })
lr_config = dict(policy='step', step=[2])
runner = dict(max_epochs=3)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
