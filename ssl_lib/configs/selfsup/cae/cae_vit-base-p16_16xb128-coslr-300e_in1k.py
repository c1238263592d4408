_base_ = [
    '../_base_/models/cae.py',
    '../_base_/datasets/imagenet_cae.py',
    '../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../_base_/default_runtime.py',
]

# dataset: 16 x 128 = 2048 images per step
data = dict(samples_per_gpu=128, workers_per_gpu=8)

# optimizer: AdamW (0.9, 0.999), weight decay 0.05 but none on norms, biases and layer scales
optimizer = dict(
    lr=1.5e-3,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    paramwise_options={
        'norm': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'gamma': dict(weight_decay=0.)
    })

# learning policy: linear warm-up for 10 epochs, then cosine to 1e-5, by iteration
lr_config = dict(
    policy='StepFixCosineAnnealing',
    min_lr=1e-5,
    warmup='linear',
    warmup_iters=10,
    warmup_ratio=1e-4,
    warmup_by_epoch=True,
    by_epoch=False)

# schedule
runner = dict(max_epochs=300)

# clip gradient
optimizer_config = dict(grad_clip=dict(max_norm=3.0))

# mixed precision
fp16 = dict(loss_scale='dynamic')

# runtime
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=100)
