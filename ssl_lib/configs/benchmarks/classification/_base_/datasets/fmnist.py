# Fashion-MNIST (28 px, the prep stage's default dataset) for linear evaluation on CPUs. The seed's
# augmentation at 28 px: RandomResizedCrop (crops of at least 30%: at the seed's 8% a crop is 8 px) and a
# flip for training, the image as it is for testing. `BackboneEvalPipeline` stands for the backbone
# artifact's own eval pipeline (backbone.json: ToTensor and the normalisation it was trained with).
train_pipeline = [
    dict(type='RandomResizedCrop', size=28, scale=(0.3, 1.)),
    dict(type='RandomHorizontalFlip'),
    dict(type='BackboneEvalPipeline'),
]
test_pipeline = [dict(type='BackboneEvalPipeline')]
data = dict(
    samples_per_gpu=64,
    recipe_gpus=1,
    workers_per_gpu=0,  # on CPUs the backbone's own threads are busier without loader processes
    train_limit=0,  # 0: the whole train split; N: a class-balanced first N images
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline))
evaluation = dict(interval=0, topk=(1, 5))  # 0: test after the last epoch only
