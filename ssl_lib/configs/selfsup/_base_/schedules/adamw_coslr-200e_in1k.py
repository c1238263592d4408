# AdamW with MAE's betas, cosine lr by iteration after a linear warm-up of 40 epochs (by iterations).
optimizer = dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)
optimizer_config = dict()
lr_config = dict(
    policy='CosineAnnealing',
    min_lr=0.,
    warmup='linear',
    warmup_iters=40,
    warmup_ratio=1e-4,  # cannot be 0
    warmup_by_epoch=True,
    by_epoch=False)
runner = dict(type='EpochBasedRunner', max_epochs=200)
