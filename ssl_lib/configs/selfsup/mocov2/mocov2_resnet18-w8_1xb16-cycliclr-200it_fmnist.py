# MoCo v2 trained by iterations (IterBasedRunner) under the seed's cyclic LR and momentum policies, on
# the tests' tiny CPU recipe: a ResNet-18 of base width 8, a 64-key queue, batch 16. 200 iterations;
# the LR climbs to 10x over the first 40% and anneals to 1e-4x, the momentum mirrors it (0.85 / 0.95).
_base_ = './mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py'
model = dict(
    queue_len=64,
    backbone=dict(base_channels=8, norm_cfg=dict(type='SplitBN', num_splits=2)),
    neck=dict(in_channels=64, hid_channels=64, out_channels=32),
    feat_dim=32)
data = dict(samples_per_gpu=16)
optimizer = dict(lr=0.006)
lr_config = dict(_delete_=True, policy='cyclic', target_ratio=(10, 1e-4), cyclic_times=1, step_ratio_up=0.4)
momentum_config = dict(policy='cyclic', target_ratio=(0.85 / 0.95, 1), cyclic_times=1, step_ratio_up=0.4)
runner = dict(_delete_=True, type='IterBasedRunner', max_iters=200)
checkpoint_config = dict(interval=50, max_keep_ckpts=2)
log_config = dict(interval=10)
