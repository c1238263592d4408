# A tiny Relative Location for tests: base width 8, batch 16 (x 8 patch pairs), two epochs.
_base_ = '../../ssl_lib/configs/selfsup/relative_loc/relative-loc_resnet18-w16_1xb64-steplr-3e_fmnist.py'
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=64, out_channels=32),
    head=dict(in_channels=32))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
