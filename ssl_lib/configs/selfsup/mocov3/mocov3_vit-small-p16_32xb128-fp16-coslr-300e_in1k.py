_base_ = [
    '../_base_/models/mocov3_vit-small-p16.py',
    '../_base_/datasets/imagenet_mocov3.py',
    '../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../_base_/default_runtime.py',
]

# dataset: 32 x 128 = 4096 images per step
data = dict(samples_per_gpu=128)

# MoCo v3 moves its momentum encoder by BYOL's cosine rule, from 0.99 to 1
custom_hooks = [dict(type='MomentumUpdateHook')]

# optimizer
optimizer = dict(type='AdamW', lr=2.4e-3, weight_decay=0.1)

# fp16
fp16 = dict(loss_scale='dynamic')

# keep only the three newest checkpoints
checkpoint_config = dict(interval=10, max_keep_ckpts=3)
