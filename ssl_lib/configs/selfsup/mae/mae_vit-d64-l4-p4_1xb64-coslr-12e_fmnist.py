# MAE sized for two CPU cores: a 4-block ViT 64 wide (4 heads) on 32 px Fashion-MNIST with 4 px
# patches (64 patches, 48 removed), a 2-block decoder 64 wide. The seed's recipe scaled down: AdamW
# (0.9, 0.95), lr 1.5e-4 per 256 images, weight decay 0.05 but none on norms, biases, position
# embeddings and tokens, cosine lr by iteration after a warm-up, normalised-pixel loss.
# Not yet measured end to end: one step of 64 images took 0.28 s on 2 busy cores (about 45 s an epoch
# of 10k images), so 12 epochs are sized to fit `make run`'s 10 minutes; no kNN / fine-tuning number yet.
_base_ = [
    '../_base_/models/mae_vit-base-p16.py',
    '../_base_/datasets/fmnist_mae.py',
    '../_base_/schedules/adamw_coslr-200e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256),
                  img_size=32, patch_size=4),
    neck=dict(num_patches=64, patch_size=4, embed_dim=64, decoder_embed_dim=64, decoder_depth=2,
              decoder_num_heads=4),
    head=dict(patch_size=4))
optimizer = dict(
    lr=1.5e-4 * 64 / 256,
    paramwise_options={
        'norm': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'pos_embed': dict(weight_decay=0.),
        'mask_token': dict(weight_decay=0.),
        'cls_token': dict(weight_decay=0.)
    })
lr_config = dict(warmup_iters=2)  # epochs, counted by iterations
runner = dict(max_epochs=12)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
