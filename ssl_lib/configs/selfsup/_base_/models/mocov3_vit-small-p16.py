# MoCo v3 (Chen, Xie and He 2021) with its ViT-Small/16: 384 wide, 12 blocks and 12 heads (the paper's
# ViT-S, not DeiT-S's 6 heads), a fixed sin-cos position embedding and a frozen random patch
# projection (stop_grad_conv1). 3-layer projector and 2-layer predictor, BN without affine at the end.
model = dict(
    type='MoCoV3',
    base_momentum=0.99,
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=384, num_layers=12, num_heads=12, feedforward_channels=1536),
        img_size=224,
        patch_size=16,
        sincos_pos_embed=True,
        weight_init='moco',
        stop_grad_conv1=True),
    neck=dict(  # reads the cls token (the seed's vit_backbone=True; MoCoV3 hands it over)
        type='NonLinearNeck',
        in_channels=384,
        hid_channels=4096,
        out_channels=256,
        num_layers=3,
        with_bias=False,
        with_last_bn=True,
        with_last_bn_affine=False,
        with_last_bias=False,
        with_avg_pool=False),
    head=dict(
        type='MoCoV3Head',
        predictor=dict(
            type='NonLinearNeck',
            in_channels=256,
            hid_channels=4096,
            out_channels=256,
            num_layers=2,
            with_bias=False,
            with_last_bn=True,
            with_last_bn_affine=False,
            with_last_bias=False,
            with_avg_pool=False),
        temperature=0.2))
