# MAE (He et al. 2022) with a ViT-Base/16 encoder: 75% of the 196 patches removed per image, the
# lightweight decoder (512 wide, 8 blocks, 16 heads), loss on the normalised pixels of removed patches.
model = dict(
    type='MAE',
    mask_ratio=0.75,
    backbone=dict(
        type='VisionTransformer',
        arch='base',
        img_size=224,
        patch_size=16,
        sincos_pos_embed=True),  # the encoder's position embedding is fixed 2D sin-cos, as the authors'
    neck=dict(
        type='MAEPretrainDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=768,
        decoder_embed_dim=512,
        decoder_depth=8,
        decoder_num_heads=16,
        mlp_ratio=4.),
    head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16))
