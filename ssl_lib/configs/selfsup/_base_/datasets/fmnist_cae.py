# Fashion-MNIST for CAE on CPUs: one crop resized to 32 px for the encoder (a patch of 4 gives an 8 x 8
# grid) and to 64 px for the tokenizer (8 x 8 px per token: one token per patch), a flip, and BEiT's
# blockwise mask of 24 of the 64 patches (the seed's 75 of 196, 38%) in rectangles of at least 4.
data_source = 'ParquetShards'
dataset_type = 'CAEDataset'
img_norm_cfg = dict(mean=[0.286, 0.286, 0.286], std=[0.353, 0.353, 0.353])
train_pipeline = [
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(
        type='RandomResizedCropAndInterpolationWithTwoPic',
        size=32,
        second_size=64,
        interpolation='bicubic',
        second_interpolation='lanczos',
        scale=(0.5, 1.0)),
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
        mask_generator=dict(type='BEiTMaskGenerator', input_size=(8, 8), num_masking_patches=24, min_num_patches=4),
        img_norm_cfg=img_norm_cfg))
