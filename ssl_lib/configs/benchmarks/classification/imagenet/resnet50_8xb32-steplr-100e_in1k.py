# The seed's ImageNet AvgPool linear evaluation for MoCo v1/v2 (and most ResNet-50 algorithms' "AvgPool").
_base_ = [
    '../_base_/models/resnet50.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/sgd_steplr-100e.py',
]
evaluation = dict(interval=1, topk=(1, 5))

# optimizer
optimizer = dict(type='SGD', lr=30., momentum=0.9, weight_decay=0.)
