# A tiny MoCo v3 for tests: a 2-block ViT 32 wide, projector / predictor 64 wide, batch 8, two
# epochs, a checkpoint after each.
_base_ = '../../ssl_lib/configs/selfsup/mocov3/mocov3_vit-d64-l4-p4_1xb64-coslr-8e_fmnist.py'
model = dict(
    backbone=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)),
    neck=dict(in_channels=32, hid_channels=64, out_channels=32),
    head=dict(predictor=dict(in_channels=32, hid_channels=64, out_channels=32)))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
