# Fashion-MNIST for SimMIM on CPUs: upsampled to 32 px, a mild crop and a flip; the mask hides 60% of the
# 4 x 4 blocks of 8 px (10 of 16), given on the 16 x 16 grid of the encoder's 2 px patches.
data_source = 'ParquetShards'
dataset_type = 'MaskedImageDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
train_pipeline = [
    dict(type='RandomResizedCrop', size=32, scale=(0.67, 1.0)),
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
        pipeline=train_pipeline,
        mask_generator=dict(
            type='SimMIMMaskGenerator', input_size=32, mask_patch_size=8, model_patch_size=2, mask_ratio=0.6)))
