# MoCo v2 sized for two CPU cores: a ResNet-18 at half width (base 32) with the small-image stem,
# a short queue and a fast momentum encoder so that 8 epochs of 10k images already learn.
_base_ = [
    '../_base_/models/mocov2.py',
    '../_base_/datasets/fmnist_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    queue_len=4096,
    momentum=0.99,
    backbone=dict(depth=18, base_channels=32, stem='cifar'),
    neck=dict(in_channels=256, hid_channels=256, out_channels=128),
    head=dict(temperature=0.2))
optimizer = dict(lr=0.06, weight_decay=5e-4)
lr_config = dict(policy='CosineAnnealing', min_lr=0., by_epoch=False)
runner = dict(max_epochs=8)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=10)
