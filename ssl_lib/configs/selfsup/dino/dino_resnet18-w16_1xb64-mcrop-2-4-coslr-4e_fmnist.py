# DINO sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem, on
# Fashion-MNIST for 4 epochs at batch 64, SwAV's Fashion-MNIST multi-crop (2 x 28 px + 4 x 16 px),
# a DINONeck 128-256-256-64 to 1024 prototypes, the teacher temperature at 0.04 throughout (as the
# released ResNet-50 run), teacher momentum 0.996 -> 1, the last layer frozen for the first epoch (156
# iterations of 10k images). Four epochs: about 100 s an epoch on 2 idle cores (five took 611 s for the
# whole pipeline). At this length the teacher goes uniform (see the README): not a recipe that learns.
_base_ = [
    '../_base_/models/dino.py',
    '../_base_/datasets/fmnist_swav_mcrop-2-4.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, hid_channels=256, bottleneck_channels=64, out_channels=1024),
    head=dict(out_channels=1024, num_crops={{_base_.num_crops}}))
data = dict(samples_per_gpu=64, train=dict(num_views={{_base_.num_crops}}))
custom_hooks = [
    dict(type='MomentumUpdateHook', end_momentum=1.),
    dict(type='DINOHook', warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_epochs=0),
]
optimizer = dict(
    type='SGD',
    lr=0.03,
    momentum=0.9,
    weight_decay=1e-4,
    paramwise_options={
        '(bn|gn)(\\d+)?.(weight|bias)': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'downsample.1': dict(weight_decay=0.),
    })
optimizer_config = dict(grad_clip=dict(max_norm=3.0), frozen_layers_cfg={'neck.last_layer': 156})
lr_config = dict(policy='CosineAnnealing', by_epoch=False, min_lr=1e-6, warmup='linear', warmup_iters=1,
                 warmup_ratio=1e-4, warmup_by_epoch=True)
runner = dict(max_epochs=4)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
