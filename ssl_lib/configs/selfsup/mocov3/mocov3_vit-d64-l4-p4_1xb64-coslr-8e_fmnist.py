# MoCo v3 sized for two CPU cores: a 4-block ViT 64 wide (4 heads) on 32 px Fashion-MNIST with 4 px
# patches, the frozen random patch projection and fixed sin-cos position embedding of the paper, a
# 3-layer projector and 2-layer predictor 256 wide. AdamW, cosine lr by iteration after a warm-up,
# temperature 0.2, momentum from 0.99 to 1 by the cosine rule (MomentumUpdateHook).
# Eight epochs: 60 s an epoch of 10k images on 2 idle cores, so the whole pipeline fits in 10 minutes.
_base_ = [
    '../_base_/models/mocov3_vit-small-p16.py',
    '../_base_/datasets/fmnist_mocov3.py',
    '../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch=dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256),
                  img_size=32, patch_size=4),
    neck=dict(in_channels=64, hid_channels=256, out_channels=64, norm_cfg=dict(type='BN')),
    head=dict(predictor=dict(in_channels=64, hid_channels=256, out_channels=64, norm_cfg=dict(type='BN'))))
custom_hooks = [dict(type='MomentumUpdateHook')]
optimizer = dict(type='AdamW', lr=1.5e-4 * 64 / 256 * 4, weight_decay=0.1)
lr_config = dict(warmup_iters=1)  # epochs, counted by iterations
runner = dict(max_epochs=8)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
