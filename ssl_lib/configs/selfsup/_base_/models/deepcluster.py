# The seed's DeepCluster: Sobel-filtered input (2 channels) to a ResNet-50, pooled, and a classifier
# over the k-means clusters.
model = dict(
    type='DeepCluster',
    with_sobel=True,
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=2,
        out_indices=[4],
        norm_cfg=dict(type='BN')),
    neck=dict(type='AvgPool2dNeck'),
    head=dict(
        type='ClsHead',
        with_avg_pool=False,  # already pooled by the neck
        in_channels=2048,
        num_classes=10000))
