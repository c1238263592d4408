# DINO (Caron et al. 2021) on ResNet-50: student and momentum teacher are the backbone + DINONeck (the
# DINO code's "head": MLP 2048-2048-256 with GELU, no BN for ResNet-50's released run, L2 normalisation,
# weight-normalised last layer to 65536 with its norm frozen); DINOHead holds the centre.
model = dict(
    type='DINO',
    base_momentum=0.996,
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=3,
        out_indices=[4],  # 0: conv-1, x: stage-x
        norm_cfg=dict(type='SyncBN')),
    neck=dict(
        type='DINONeck',
        in_channels=2048,
        hid_channels=2048,
        bottleneck_channels=256,
        out_channels=65536,
        num_layers=3,
        use_bn=False,
        norm_last_layer=True,
        with_avg_pool=True),
    head=dict(
        type='DINOHead',
        out_channels=65536,  # equal to neck['out_channels']
        num_crops=[2, 6],
        student_temp=0.1,
        teacher_temp=0.04,
        center_momentum=0.9))
