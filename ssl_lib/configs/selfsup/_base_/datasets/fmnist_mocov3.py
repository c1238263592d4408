# Fashion-MNIST for MoCo v3 on CPUs: BYOL's two asymmetric pipelines at 32 px (a patch of 4 gives an
# 8 x 8 grid), without the hue/saturation jitter and grayscale that do nothing to grey images.
data_source = 'ParquetShards'
dataset_type = 'MultiViewDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
_color = dict(
    type='RandomAppliedTrans',
    transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0., hue=0.)],
    p=0.8)
train_pipeline1 = [
    dict(type='RandomResizedCrop', size=32, scale=(0.3, 1.)), _color,
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=1.0, p=1.),
    dict(type='Solarization', p=0.),
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
train_pipeline2 = [
    dict(type='RandomResizedCrop', size=32, scale=(0.3, 1.)), _color,
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=1.0, p=0.1),
    dict(type='Solarization', p=0.2),
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
eval_pipeline = [dict(type='Resize', size=32), dict(type='ToTensor'), dict(type='Normalize', **img_norm_cfg)]
data = dict(
    samples_per_gpu=64,
    workers_per_gpu=0,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        num_views=[1, 1],
        pipelines=[train_pipeline1, train_pipeline2]))
