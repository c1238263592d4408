# Fashion-MNIST for MAE on CPUs: upsampled to 32 px so that a patch of 4 gives an 8 x 8 grid (75% of 64
# patches is exactly 48), a mild crop and a flip.
data_source = 'ParquetShards'
dataset_type = 'MultiViewDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
train_pipeline = [
    dict(type='RandomResizedCrop', size=32, scale=(0.5, 1.0)),
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
        num_views=[1],
        pipelines=[train_pipeline]))
