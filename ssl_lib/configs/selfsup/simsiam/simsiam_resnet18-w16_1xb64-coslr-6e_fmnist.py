# SimSiam sized for two CPU cores: a quarter-width ResNet-18 (base 16) with the small-image stem, on 10k
# Fashion-MNIST images for 6 epochs (about 4.5 minutes of pretraining, 225 images/s; `make run`: 330 s).
# The seed's recipe scaled down: SGD with cosine lr, the predictor at the fixed base lr (SimSiamHook),
# MoCo v2's Fashion-MNIST pipeline as the seed uses MoCo v2's, a 3-layer 512-wide projector and a
# 128-wide predictor bottleneck (the seed's 2048 / 512 ratio); zero_init_residual as the seed.
# Measured (kNN top-1 at k=20; raw pixels: 83.15): this recipe 74.95 after 6 epochs; the same
# backbone at random init 54.90 (zero_init_residual: every block starts as identity), 76.65 without it.
_base_ = [
    '../_base_/models/simsiam.py',
    '../_base_/datasets/fmnist_mocov2.py',
    '../_base_/schedules/sgd_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, hid_channels=512, out_channels=512),
    head=dict(predictor=dict(in_channels=512, hid_channels=128, out_channels=512)))
data = dict(samples_per_gpu=64)
lr = 0.05
custom_hooks = [dict(type='SimSiamHook', priority='HIGH', fix_pred_lr=True, lr=lr)]
optimizer = dict(lr=lr, weight_decay=5e-4, paramwise_options={'predictor': dict(fix_lr=True)})
lr_config = dict(policy='CosineAnnealing', min_lr=0., by_epoch=False)
runner = dict(max_epochs=6)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
