_base_ = [
    '../_base_/models/swav.py',
    '../_base_/datasets/fmnist_swav_mcrop-2-4.py',
    '../_base_/schedules/lars_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18, base_channels=16, stem='cifar', norm_cfg=dict(type='BN')),
    neck=dict(in_channels=128, hid_channels=128, out_channels=64, norm_cfg=dict(type='BN')),
    head=dict(feat_dim=64, num_crops={{_base_.num_crops}}, num_prototypes=100))
custom_hooks = [
    dict(
        type='SwAVHook',
        priority='VERY_HIGH',
        batch_size={{_base_.data.samples_per_gpu}},
        epoch_queue_starts=2,
        crops_for_assign=[0, 1],
        feat_dim=64,
        queue_length=1024)
]
data = dict(train=dict(num_views={{_base_.num_crops}}))
optimizer = dict(type='LARS', lr=0.6)
optimizer_config = dict(frozen_layers_cfg={'head.prototypes': 156})
lr_config = dict(_delete_=True, policy='CosineAnnealing', min_lr=6e-4)
runner = dict(max_epochs=10)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
