# A tiny VICReg for tests: base width 8, a 64-32-32-32 expander, batch 16, two epochs, a checkpoint after each.
_base_ = '../../ssl_lib/configs/selfsup/vicreg/vicreg_resnet18-w16_1xb64-coslr-8e_fmnist.py'
model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=64, hid_channels=32, out_channels=32),
    head=dict(in_channels=32))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
