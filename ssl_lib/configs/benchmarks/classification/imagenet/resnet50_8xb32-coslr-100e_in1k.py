# The seed's ImageNet AvgPool linear evaluation for SwAV and Barlow Twins.
_base_ = [
    '../_base_/models/resnet50.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/sgd_coslr-100e.py',
]
evaluation = dict(interval=1, topk=(1, 5))
