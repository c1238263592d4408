# CAE sized for two CPU cores: a 4-block ViT 64 wide (4 heads, layer scale 0.1, no qkv bias) on 32 px
# Fashion-MNIST with 4 px patches, a 2-block regressor and a 2-block decoder 64 wide, and a small DALL-E
# encoder at a seeded random init as the tokenizer (n_hid 8, one block per group, 512 tokens): OpenAI's
# weights are for 8192 tokens of natural images and would cost more than the model. The seed's recipe
# scaled down: AdamW (0.9, 0.999), lr 1.5e-3 per 2048 images, weight decay 0.05 but none on norms,
# biases and layer scales, cosine lr by iteration after a warm-up, gradients clipped at 3.
# No qkv bias (the ImageNet recipe has the seed's q / v biases): the README's figures were measured so.
# 43 s an epoch of 10k images on 2 idle cores; the pretrain stage takes about 3 minutes.
_base_ = [
    '../_base_/models/cae.py',
    '../_base_/datasets/fmnist_cae.py',
    '../_base_/schedules/adamw_coslr-300e_in1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=256),
                  img_size=32, patch_size=4, qkv_bias=False),
    neck=dict(num_classes=512, embed_dims=64, num_heads=4, regressor_depth=2, decoder_depth=2),
    head=dict(tokenizer_path=None, tokenizer=dict(n_hid=8, n_blk_per_group=1, vocab_size=512, seed=0)))
optimizer = dict(
    lr=1.5e-3 * 64 / 2048,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    paramwise_options={
        'norm': dict(weight_decay=0.),
        'bias': dict(weight_decay=0.),
        'gamma': dict(weight_decay=0.)
    })
optimizer_config = dict(grad_clip=dict(max_norm=3.0))
lr_config = dict(min_lr=1e-5, warmup_iters=1)  # epochs, counted by iterations
runner = dict(max_epochs=4)
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50)
