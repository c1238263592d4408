# A tiny Rotation Prediction for tests: base width 8, batch 16 (x 4 rotations), two epochs.
_base_ = '../../ssl_lib/configs/selfsup/rotation_pred/rotation-pred_resnet18-w16_1xb64-steplr-3e_fmnist.py'
model = dict(
    backbone=dict(base_channels=8),
    head=dict(in_channels=64))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
