# The seed's CAE ImageNet data: a flip, one random-resized crop (scale 0.08-1) resized to 224 px
# (bicubic) for the encoder and to 112 px (lanczos) for the tokenizer (8 x 8 px per token = one
# 16 px patch), and BEiT's blockwise mask of 75 of the 14 x 14 patches. `data_source.root` is the
# prepared dataset (prep stage).
data_source = 'ParquetShards'
dataset_type = 'CAEDataset'
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomHorizontalFlip', p=0.5),
    dict(
        type='RandomResizedCropAndInterpolationWithTwoPic',
        size=224,
        second_size=112,
        interpolation='bicubic',
        second_interpolation='lanczos',
        scale=(0.08, 1.0)),
]
eval_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
data = dict(
    samples_per_gpu=256,
    workers_per_gpu=8,
    drop_last=True,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        pipeline=train_pipeline,
        mask_generator=dict(
            type='BEiTMaskGenerator',
            input_size=(14, 14),
            num_masking_patches=75,
            max_num_patches=None,
            min_num_patches=16),
        img_norm_cfg=img_norm_cfg))
