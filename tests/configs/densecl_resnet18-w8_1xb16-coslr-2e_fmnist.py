# A tiny DenseCL for tests: base width 8, 64-key queues, batch 16, two epochs, dense loss from iteration 2.
_base_ = '../../ssl_lib/configs/selfsup/densecl/densecl_resnet18-w16_1xb64-coslr-10e_fmnist.py'
model = dict(
    queue_len=64,
    feat_dim=32,
    backbone=dict(base_channels=8, norm_cfg=dict(type='SplitBN', num_splits=2)),
    neck=dict(in_channels=64, hid_channels=64, out_channels=32))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
custom_hooks = [dict(type='DenseCLHook', start_iters=2)]
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
