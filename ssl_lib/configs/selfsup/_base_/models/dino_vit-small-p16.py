# DINO (Caron et al. 2021) on ViT-Small/16, the paper's main ViT run: student and momentum teacher are the
# ViT (drop path 0.1 in the student) + DINONeck on its CLS token (MLP 384-2048-2048-256 with GELU, no BN,
# L2 normalisation, weight-normalised last layer to 65536; its norm trained, as the paper recommends for
# ViT-S); DINOHead holds the centre.
model = dict(
    type='DINO',
    base_momentum=0.996,
    backbone=dict(
        type='VisionTransformer',
        arch='small',
        img_size=224,
        patch_size=16,
        drop_path_rate=0.1),
    neck=dict(
        type='DINONeck',
        in_channels=384,
        hid_channels=2048,
        bottleneck_channels=256,
        out_channels=65536,
        num_layers=3,
        use_bn=False,
        norm_last_layer=False),
    head=dict(
        type='DINOHead',
        out_channels=65536,  # equal to neck['out_channels']
        num_crops=[2, 6],
        student_temp=0.1,
        teacher_temp=0.04,
        center_momentum=0.9))
