# A tiny DINO for tests: base width 8, a 64-32-32-16 neck to 32 prototypes, batch 16, two epochs; the
# teacher temperature warms 0.04 -> 0.07 over both epochs and the last layer is frozen for 2 iterations.
_base_ = '../../ssl_lib/configs/selfsup/dino/dino_resnet18-w16_1xb64-mcrop-2-4-coslr-4e_fmnist.py'
model = dict(
    base_momentum=0.9,
    backbone=dict(base_channels=8),
    neck=dict(in_channels=64, hid_channels=32, bottleneck_channels=16, out_channels=32),
    head=dict(out_channels=32))
data = dict(samples_per_gpu=16)
custom_hooks = [
    dict(type='MomentumUpdateHook', end_momentum=1.),
    dict(type='DINOHook', warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_epochs=2),
]
optimizer_config = dict(grad_clip=dict(max_norm=3.0), frozen_layers_cfg={'neck.last_layer': 2})
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
