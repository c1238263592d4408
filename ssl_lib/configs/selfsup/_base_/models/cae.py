# CAE (Chen et al. 2022) with a ViT-Base/16 encoder (layer scale 0.1, fixed sin-cos positions; the
# seed's q and v biases: its `qkv_bias=False` adds BEiT's q / v biases, which is timm's qkv bias here,
# since a key bias changes no attention weight), a 4-block latent regressor and a 4-block decoder, both 768 wide with layer scale, the
# DALL-E tokenizer's 8192 tokens as targets, alignment weight 2, and a teacher copied from the encoder
# every step (momentum 0).
model = dict(
    type='CAE',
    base_momentum=0.0,
    backbone=dict(
        type='CAEViT',
        arch='base',
        img_size=224,
        patch_size=16,
        init_values=0.1,
        qkv_bias=True),
    neck=dict(
        type='CAENeck',
        num_classes=8192,
        embed_dims=768,
        num_heads=12,
        regressor_depth=4,
        decoder_depth=4,
        mlp_ratio=4.,
        init_values=0.1),
    # the DALL-E encoder's weights: see the seed's CAE README (download them to this path)
    head=dict(type='CAEHead', tokenizer_path='cae_ckpt/encoder_stat_dict.pth', lambd=2.))
