# A tiny MoCo v2 for tests: base width 8, a 64-key queue, batch 16, two epochs.
_base_ = '../../ssl_lib/configs/selfsup/mocov2/mocov2_resnet18-w16_1xb64-coslr-10e_fmnist.py'
model = dict(
    queue_len=64,
    backbone=dict(base_channels=8, norm_cfg=dict(type='SplitBN', num_splits=2)),
    neck=dict(in_channels=64, hid_channels=64, out_channels=32),
    feat_dim=32)
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
