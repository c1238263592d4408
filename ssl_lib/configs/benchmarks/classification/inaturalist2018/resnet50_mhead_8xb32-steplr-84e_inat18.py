# The seed's iNaturalist 2018 multi-head linear evaluation.
_base_ = [
    '../_base_/models/resnet50_multihead.py',
    '../_base_/datasets/inaturalist2018.py',
    '../_base_/schedules/sgd_steplr-100e.py',
]

# model settings
model = dict(head=dict(norm_cfg=dict(type='SyncBN', momentum=0.1, affine=False), num_classes=8142))

# optimizer
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True)

# learning policy
lr_config = dict(policy='step', step=[24, 48, 72])

# runtime settings
runner = dict(type='EpochBasedRunner', max_epochs=84)
