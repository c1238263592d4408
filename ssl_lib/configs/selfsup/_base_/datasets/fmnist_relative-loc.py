# Fashion-MNIST (28 px, grey, replicated to 3 channels) for Relative Location on CPUs.
# The seed resizes to 292 and crops 255 (85 px cells, 64 px patches); 28 px gives 9 px cells, so the
# image is first enlarged, with the jitter about a quarter of a cell as in the seed (21 of 85 px).
data_source = 'ParquetShards'
dataset_type = 'RelativeLocDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
train_pipeline = [
    dict(type='Resize', size=60),
    dict(type='RandomCrop', size=54),
]
format_pipeline = [
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
        pipeline=train_pipeline,
        format_pipeline=format_pipeline,
        patch_jitter=4))
