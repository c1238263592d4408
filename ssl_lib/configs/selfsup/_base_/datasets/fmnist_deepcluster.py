# Fashion-MNIST (28 px, grey, replicated to 3 channels) for DeepCluster and ODC on CPUs: the seed's
# pipeline made milder for 28 px (crops of at least 30%, no hue or saturation jitter on grey images).
data_source = 'ParquetShards'
dataset_type = 'DeepClusterDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
train_pipeline = [
    dict(type='RandomResizedCrop', size=28, scale=(0.3, 1.)),
    dict(type='RandomHorizontalFlip'),
    dict(type='RandomRotation', degrees=2),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
extract_pipeline = [dict(type='ToTensor'), dict(type='Normalize', **img_norm_cfg)]
eval_pipeline = extract_pipeline
data = dict(
    samples_per_gpu=64,
    workers_per_gpu=0,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        pipeline=train_pipeline))
