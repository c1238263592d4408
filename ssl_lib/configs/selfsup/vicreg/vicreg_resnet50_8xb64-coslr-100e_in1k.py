# VICReg on ImageNet, the authors' recipe at a global batch of 512 for 100 epochs (their ablation
# length; the headline 73.2% linear top-1 is 1000 epochs at batch 2048). Data: the authors' two
# asymmetric pipelines, which are BYOL's (blur 1.0 / 0.1, solarize 0 / 0.2).
_base_ = [
    '../_base_/models/vicreg.py',
    '../_base_/datasets/imagenet_byol.py',
    '../_base_/schedules/lars_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]

data = dict(samples_per_gpu=64)

# LARS, base lr 0.2 per 256 images (0.2 x 512 / 256 = 0.4), weight decay 1e-6; biases and norms have
# neither weight decay nor LARS adaptation (the authors' exclude_bias_and_norm), at the same lr.
optimizer = dict(
    type='LARS',
    lr=0.4,
    momentum=0.9,
    weight_decay=1e-6,
    eta=0.001,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0, lars_exclude=True),
        'bias': dict(weight_decay=0, lars_exclude=True),
        # bn layer in ResNet block downsample module
        'downsample.1': dict(weight_decay=0, lars_exclude=True),
    })

# 10 epochs of linear warm-up, then a cosine per iteration down to 0.001 x the peak lr
lr_config = dict(
    policy='CosineAnnealing',
    by_epoch=False,
    min_lr=0.0004,
    warmup='linear',
    warmup_iters=10,
    warmup_ratio=1e-4,  # cannot be 0
    warmup_by_epoch=True)

checkpoint_config = dict(interval=10, max_keep_ckpts=3)

runner = dict(type='EpochBasedRunner', max_epochs=100)
