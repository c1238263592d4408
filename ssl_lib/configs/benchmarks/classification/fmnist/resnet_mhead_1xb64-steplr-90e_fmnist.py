# The seed's ImageNet multi-head recipe (resnet50_mhead_8xb32-steplr-90e_in1k: SGD lr 0.01, nesterov momentum
# 0.9, weight decay 1e-4, lr / 10 at epochs 30, 60 and 90; 90 epochs) on the whole Fashion-MNIST train split,
# with the AvgPool head trained beside feat1..feat5 in the same run. The backbone's widths are its own (any
# ResNet from the backbone artifact), so no `backbone='resnet50'` here.
_base_ = [
    '../_base_/models/resnet50_multihead.py',
    '../_base_/datasets/fmnist.py',
    '../_base_/schedules/sgd_steplr-100e.py',
]
model = dict(head=dict(pool_type='adaptive', backbone=None, with_avgpool=True, num_classes=10))
# the avgpool head's features are not normalised (the seed gives it a recipe of its own: lr 30 for MoCo, 0.3
# for SwAV); at 10x the feat heads' lr it reaches 65% in the trimmed run, against 48% at 1x
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True,
                 paramwise_options={'avgpool': dict(lr_mult=10.)})
lr_config = dict(policy='step', step=[30, 60, 90])
runner = dict(type='EpochBasedRunner', max_epochs=90)
evaluation = dict(interval=10)
