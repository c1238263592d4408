# A tiny NPID for tests: base width 8, a 64-row memory bank (fmnist_tiny's 64 training images),
# 256 negatives, batch 16, two epochs.
_base_ = '../../ssl_lib/configs/selfsup/npid/npid_resnet18-w16_1xb64-steplr-10e_fmnist.py'
model = dict(
    neg_num=256,
    backbone=dict(base_channels=8),
    neck=dict(in_channels=64, out_channels=32),
    memory_bank=dict(length=64, feat_dim=32))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
lr_config = dict(step=[1])
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
