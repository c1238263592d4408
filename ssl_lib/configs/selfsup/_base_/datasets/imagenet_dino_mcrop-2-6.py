# DINO's ImageNet multi-crop for ResNet-50: 2 global crops of 224 px (scale 0.14-1), one pipeline each
# (blur always / rarely blur and sometimes solarize, as BYOL), and 6 local crops of 96 px (scale
# 0.05-0.14, blur half the time). `data_source.root` is the prepared dataset (prep stage).
data_source = 'ParquetShards'
dataset_type = 'MultiViewDataset'
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
num_crops = [2, 6]
color_jitter = dict(
    type='RandomAppliedTrans',
    transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)],
    p=0.8)
global_pipeline1 = [
    dict(type='RandomResizedCrop', size=224, scale=(0.14, 1.), interpolation=3),  # bicubic
    dict(type='RandomHorizontalFlip'),
    color_jitter,
    dict(type='RandomGrayscale', p=0.2),
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, p=1.),
    dict(type='Solarization', p=0.),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
global_pipeline2 = [
    dict(type='RandomResizedCrop', size=224, scale=(0.14, 1.), interpolation=3),  # bicubic
    dict(type='RandomHorizontalFlip'),
    color_jitter,
    dict(type='RandomGrayscale', p=0.2),
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, p=0.1),
    dict(type='Solarization', p=0.2),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
local_pipeline = [
    dict(type='RandomResizedCrop', size=96, scale=(0.05, 0.14), interpolation=3),  # bicubic
    dict(type='RandomHorizontalFlip'),
    color_jitter,
    dict(type='RandomGrayscale', p=0.2),
    dict(type='GaussianBlur', sigma_min=0.1, sigma_max=2.0, p=0.5),
    dict(type='Solarization', p=0.),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
eval_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
data = dict(
    samples_per_gpu=64,
    workers_per_gpu=8,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        num_views=[1, 1, num_crops[1]],
        pipelines=[global_pipeline1, global_pipeline2, local_pipeline]))
