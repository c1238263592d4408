# Fashion-MNIST (28 px, grey, replicated to 3 channels) for SimCLR and Barlow Twins on CPUs: the seed's
# SimCLR pipeline less what does nothing to grey images (RandomGrayscale, saturation and hue jitter)
# and what erases a 28 px garment (0.08-scale crops, sigma-2 blur).
data_source = 'ParquetShards'
dataset_type = 'MultiViewDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
train_pipeline = [
    dict(type='RandomResizedCrop', size=28, scale=(0.3, 1.)),
    dict(type='RandomHorizontalFlip'),
    dict(
        type='RandomAppliedTrans',
        transforms=[dict(type='ColorJitter', brightness=0.8, contrast=0.8, saturation=0., hue=0.)],
        p=0.8),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
eval_pipeline = [dict(type='ToTensor'), dict(type='Normalize', **img_norm_cfg)]
data = dict(
    samples_per_gpu=256,
    workers_per_gpu=0,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        num_views=[2],
        pipelines=[train_pipeline]))
