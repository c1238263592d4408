# The seed's MAE ImageNet data: one view per image, a wide random-resized crop (scale 0.2-1, bicubic)
# and a flip only; the masking does the rest. `data_source.root` is the prepared dataset (prep stage).
data_source = 'ParquetShards'
dataset_type = 'MultiViewDataset'
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.0), interpolation=3),  # bicubic
    dict(type='RandomHorizontalFlip'),
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
    samples_per_gpu=128,
    workers_per_gpu=8,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        num_views=[1],
        pipelines=[train_pipeline]))
