# A tiny MAE for tests: a 2-block ViT 32 wide, a 1-block decoder, batch 16, two epochs, a checkpoint
# after each.
_base_ = '../../ssl_lib/configs/selfsup/mae/mae_vit-d64-l4-p4_1xb64-coslr-12e_fmnist.py'
model = dict(
    backbone=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)),
    neck=dict(embed_dim=32, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2))
data = dict(samples_per_gpu=16)
lr_config = dict(warmup_iters=1)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
