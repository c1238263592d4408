# The seed's ODC ImageNet data settings.
# The seed samples with replacement (`sampling_replace=True`); here each epoch visits every image once.
data_source = 'ParquetShards'
dataset_type = 'DeepClusterDataset'
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=224),
    dict(type='RandomHorizontalFlip'),
    dict(type='RandomRotation', degrees=2),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=1.0, hue=0.5),
    dict(type='RandomGrayscale', p=0.2),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
extract_pipeline = [
    dict(type='Resize', size=256),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
eval_pipeline = extract_pipeline
data = dict(
    samples_per_gpu=64,  # 64 x 8 GPUs
    workers_per_gpu=4,
    train=dict(
        type=dataset_type,
        data_source=dict(type=data_source, root=None, split='train'),
        pipeline=train_pipeline))
num_classes = 10000
