# SimMIM (Xie et al. 2022) with a Swin-Base encoder at 192 px, windows of 6 (48 / 24 / 12 / 6 patches a side
# per stage), a learnt mask token, and the one-layer linear decoder from the last stage (32 px a cell).
model = dict(
    type='SimMIM',
    backbone=dict(
        type='SwinTransformer',
        arch='base',
        img_size=192,
        patch_size=4,
        window_size=6,
        use_mask_token=True),
    neck=dict(type='SimMIMNeck', in_channels=128 * 2**3, encoder_stride=32),
    head=dict(type='SimMIMHead', patch_size=4, encoder_in_channels=3))
