# Full fine-tuning of a ResNet on two CPU cores (the finetune stage's default for a CNN backbone): the
# semi-supervised protocol's optimiser (SGD momentum 0.9, weight decay 5e-4, lr 0.01; the seed has no
# layer-wise decay for CNNs) on the whole train split, cosine by iteration after one warm-up epoch, global
# average pool + linear head (std 0.01, as the seed's ClsHead), no Mixup / CutMix, no label smoothing.
crop_scale = (0.3, 1.0)
data = dict(samples_per_gpu=64, workers_per_gpu=0)
model = dict(head=dict(type='ClsHead', init_std=0.01))
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)
lr_config = dict(policy='CosineAnnealing', min_lr=0., warmup='linear', warmup_iters=1, warmup_ratio=1e-3,
                 warmup_by_epoch=True, by_epoch=False)
runner = dict(max_epochs=10)
