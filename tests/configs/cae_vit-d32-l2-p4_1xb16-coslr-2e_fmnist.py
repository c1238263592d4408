# A tiny CAE for tests: a 2-block ViT 32 wide, a 1-block regressor and decoder, a tokenizer of 64
# tokens 8 wide, batch 16, two epochs, a checkpoint after each.
_base_ = '../../ssl_lib/configs/selfsup/cae/cae_vit-d64-l4-p4_1xb64-coslr-4e_fmnist.py'
model = dict(
    backbone=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)),
    neck=dict(num_classes=64, embed_dims=32, num_heads=2, regressor_depth=1, decoder_depth=1),
    head=dict(tokenizer=dict(n_hid=8, vocab_size=64)))
data = dict(samples_per_gpu=16)
runner = dict(max_epochs=2)
checkpoint_config = dict(interval=1, max_keep_ckpts=0)
log_config = dict(interval=1)
