# The seed's ImageNet multi-head linear evaluation (Feature1 - Feature5 of its tables).
_base_ = [
    '../_base_/models/resnet50_multihead.py',
    '../_base_/datasets/imagenet.py',
    '../_base_/schedules/sgd_steplr-100e.py',
]

# dataset settings
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=224),
    dict(type='RandomHorizontalFlip'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.),
    dict(type='ToTensor'),
    dict(type='Lighting'),
    dict(type='Normalize', **img_norm_cfg),
]
data = dict(train=dict(pipeline=train_pipeline))

# optimizer (the seed's norm_decay_mult=0. has nothing to act on: the heads' BN has no affine parameters)
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)

# learning policy
lr_config = dict(policy='step', step=[30, 60, 90])

# runtime settings
runner = dict(type='EpochBasedRunner', max_epochs=90)
