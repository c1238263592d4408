# Fashion-MNIST (28 px, grey, replicated to 3 channels) for SwAV's multi-crop on CPUs: 2 crops of 28 px
# and 4 of 16 px. Milder than the ImageNet recipe, as for MoCo v2 on Fashion-MNIST: no hue/saturation
# jitter on grey images, no blur at 28 px.
data_source = 'ParquetShards'
dataset_type = 'MultiViewDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
num_crops = [2, 4]
color_jitter = dict(
    type='RandomAppliedTrans',
    transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0., hue=0.)],
    p=0.8)
train_pipeline1 = [
    dict(type='RandomResizedCrop', size=28, scale=(0.3, 1.)),
    color_jitter,
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
train_pipeline2 = [
    dict(type='RandomResizedCrop', size=16, scale=(0.1, 0.3)),
    color_jitter,
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
eval_pipeline = [dict(type='ToTensor'), dict(type='Normalize', **img_norm_cfg)]
data = dict(
    samples_per_gpu=64,
    workers_per_gpu=0,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        num_views=num_crops,
        pipelines=[train_pipeline1, train_pipeline2]))
