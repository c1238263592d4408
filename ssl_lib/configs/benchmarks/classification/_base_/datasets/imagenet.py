# The seed's ImageNet linear-evaluation data. The dataset is the prepared dataset artifact given to the
# linear stage (prep reads `data/imagenet/train` + `val` class folders, or the meta/train.txt list files);
# its 'train' split trains the heads and its 'test' split is the seed's val.
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=224),
    dict(type='RandomHorizontalFlip'),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
test_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
data = dict(
    samples_per_gpu=32,  # total 32x8=256, 8GPU linear cls
    recipe_gpus=8,  # the stage runs one process: a step takes samples_per_gpu x recipe_gpus images
    workers_per_gpu=4,
    train_limit=0,  # 0: the whole train split; N: a class-balanced first N images
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline))
evaluation = dict(interval=10, topk=(1, 5))
