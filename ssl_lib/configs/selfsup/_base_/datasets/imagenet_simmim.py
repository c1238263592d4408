# The seed's SimMIM ImageNet data: one 192 px view per image (a mild random-resized crop and a flip), and
# its mask: 60% of the 6 x 6 blocks of 32 px, given on the 48 x 48 grid of the encoder's 4 px patches.
# `data_source.root` is the prepared dataset (prep stage).
data_source = 'ParquetShards'
dataset_type = 'MaskedImageDataset'
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=192, scale=(0.67, 1.0), ratio=(3. / 4., 4. / 3.)),
    dict(type='RandomHorizontalFlip'),
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
        pipeline=train_pipeline,
        mask_generator=dict(
            type='SimMIMMaskGenerator', input_size=192, mask_patch_size=32, model_patch_size=4,
            mask_ratio=0.6)))
