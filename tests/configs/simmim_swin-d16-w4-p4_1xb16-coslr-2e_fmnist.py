# A tiny SimMIM for tests: a 2-stage Swin 16 wide (1 block a stage, 4 px patches, windows of 4: 8 / 4
# cells a side), mask blocks of 8 px, batch 16, two epochs, a checkpoint after each.
_base_ = '../../ssl_lib/configs/selfsup/simmim/simmim_swin-d32-w4-p2_1xb64-coslr-12e_fmnist.py'
model = dict(
    backbone=dict(arch=dict(embed_dims=16, depths=[1, 1], num_heads=[1, 2]), patch_size=4, out_indices=(1, )),
    neck=dict(in_channels=32, encoder_stride=8),
    head=dict(patch_size=4))
data = dict(samples_per_gpu=16, train=dict(mask_generator=dict(model_patch_size=4)))
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
