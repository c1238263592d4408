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
