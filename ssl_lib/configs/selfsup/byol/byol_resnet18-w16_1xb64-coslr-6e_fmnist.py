# BYOL sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem, on 10k
# Fashion-MNIST images for 6 epochs (about 6 minutes of pretraining, 170 images/s; `make run`: 422 s).
# The seed's recipe scaled down: LARS (bn/bias excluded), cosine lr with a 1-epoch warmup, the cosine
# momentum schedule from 0.99 to 1 (MomentumUpdateHook), the two asymmetric pipelines of fmnist_byol.
# Measured (kNN top-1 at k=20; this backbone at random init: 76.65, raw pixels: 83.15):
#   - this recipe: 68.90 after 6 epochs, 67.35 after 2: BYOL does not beat random init this early.
#   - LARS at batch 64 moves the conv/linear weights by only lr * eta = 3e-4 of their norm per step
#     while the excluded bn/bias take plain SGD steps of lr 0.3; a small-batch SGD recipe is untested.
_base_ = [
    '../_base_/models/byol.py',
    '../_base_/datasets/fmnist_byol.py',
    '../_base_/schedules/lars_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    base_momentum=0.99,
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, hid_channels=512, out_channels=128),
    head=dict(predictor=dict(in_channels=128, hid_channels=512, out_channels=128)))
custom_hooks = [dict(type='MomentumUpdateHook', end_momentum=1., update_interval=1)]
optimizer = dict(
    type='LARS',
    lr=0.3,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)([0-9]+)?.(weight|bias)': dict(weight_decay=0., lars_exclude=True),
        'bias': dict(weight_decay=0., lars_exclude=True)
    })
lr_config = dict(
    policy='CosineAnnealing', min_lr=0., by_epoch=False, warmup='linear', warmup_iters=1,
    warmup_ratio=1e-4, warmup_by_epoch=True)
runner = dict(max_epochs=6)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
