# VICReg sized for two CPU cores, as the Barlow Twins CPU recipe: a quarter-width ResNet-18 (base 16)
# with the small-image stem, on Fashion-MNIST for 8 epochs at batch 64, an expander 128-512-512-512
# (the authors' shape, 16 times narrower), coefficients 25 / 25 / 1, LARS with the authors' options
# (biases and norms excluded, no lr multiplier); plain BN; BYOL's two asymmetric pipelines.
# Eight epochs: 59 s an epoch of 10k images on 2 idle cores, so the whole pipeline fits in 10 minutes.
_base_ = [
    '../_base_/models/vicreg.py',
    '../_base_/datasets/fmnist_byol.py',
    '../_base_/schedules/lars_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, hid_channels=512, out_channels=512, norm_cfg=dict(type='BN')),
    head=dict(in_channels=512))
data = dict(samples_per_gpu=64)
optimizer = dict(
    type='LARS',
    lr=0.3,
    momentum=0.9,
    weight_decay=1e-6,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0, lars_exclude=True),
        'bias': dict(weight_decay=0, lars_exclude=True),
        'downsample.1': dict(weight_decay=0, lars_exclude=True),
    })
lr_config = dict(policy='CosineAnnealing', by_epoch=False, min_lr=0.0003, warmup='linear', warmup_iters=1,
                 warmup_ratio=1e-4, warmup_by_epoch=True)
runner = dict(max_epochs=8)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
