# SimMIM sized for two CPU cores: a 3-stage Swin 32 wide (2 blocks a stage, 1 / 2 / 4 heads, windows of
# 4) on 32 px Fashion-MNIST with 2 px patches (16 / 8 / 4 cells a side), so the last stage is 8 px a cell,
# the size of the mask blocks, as Swin-B's last stage and mask blocks are 32 px in the seed's recipe. The
# seed's recipe scaled down: AdamW (0.9, 0.999), weight decay 0.05 but none on norms, biases and relative
# position biases, gradient clipping at 5, a warm-up of a tenth of the run, then cosine by iteration down
# to a twentieth of the lr; fp32 on CPUs.
# lr: the seed's 2e-4 per 512 images (2.5e-5 here) is tuned for 100 epochs of an 88M-parameter model; on
# this 0.6M one it barely moves the loss in 128 steps (0.95 -> 0.84; 2.5e-4: -> 0.58; 1e-3: -> 0.52), so
# the rule starts from 4e-3 per 512 images instead.
# Sized, not yet run end to end: on one thread a step of 64 images costs 0.22 s of CPU and the data 0.4 ms
# an image, so an epoch of 10k images takes at most about 40 s and 12 epochs fit `make run`'s 10 minutes;
# no fine-tuning number yet.
_base_ = [
    '../_base_/models/simmim_swin-base.py',
    '../_base_/datasets/fmnist_simmim.py',
    '../_base_/schedules/adamw_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=32, depths=[2, 2, 2], num_heads=[1, 2, 4]),
        img_size=32,
        patch_size=2,
        window_size=4,
        out_indices=(2, )),
    neck=dict(in_channels=32 * 2**2, encoder_stride=8),
    head=dict(patch_size=2))
optimizer = dict(
    lr=4e-3 * 64 / 512,
    betas=(0.9, 0.999),
    eps=1e-8,
    paramwise_options={
        'norm': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'absolute_pos_embed': dict(weight_decay=0.),
        'relative_position_bias_table': dict(weight_decay=0.)
    })
optimizer_config = dict(grad_clip=dict(max_norm=5.0))
lr_config = dict(min_lr=2e-4 * 64 / 512, warmup_iters=1, warmup_ratio=1e-6 / 2e-4)  # epochs, counted by iterations
runner = dict(max_epochs=12)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
