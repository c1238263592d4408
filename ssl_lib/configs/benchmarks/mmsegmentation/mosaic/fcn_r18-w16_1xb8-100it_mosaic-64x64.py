# The CPU recipe of the seed's FCN benchmark for the default data (64 px Fashion-MNIST mosaics, background
# + 10 classes, 255 void) and our small backbones: `SSLResNet` with the CIFAR stem (stride 1, no max-pool),
# so that layer4 is at output stride 8 as in the seed's D8. 100 iterations of 8 images (about 45 s, both
# runs, on 2 idle cores) depart from the seed's fine-tuning on purpose: fine-tuned end to end (FCN head, or
# even a 1x1 head, any lr 0.01-0.5, with or without the seed's augmentations) the model's cross-entropy
# falls but, with ~87% background pixels, the foreground probability is still spread over 10 classes at
# 100-400 iterations, so every pixel's argmax is background (mIoU 8.05 = background IoU / 11) for
# pretrained and random weights alike. So at this budget the backbone is frozen (BN statistics too) and the
# head is FCN's classifier alone (num_convs=0: a 1x1 conv on layer4) at lr 0.1 without decay or schedule;
# no auxiliary head; only the flip of the seed's augmentations (random rescale, crop and photometric
# distortion slowed learning further). The pretrained features then predict foreground within 100 iterations,
# and the random-init baseline measures what random features give.
# The stage takes depth, width and stem from the extracted backbone (and the head's widths with them), and
# the classes from the dataset.
_base_ = ['../_base_/default_runtime.py']

norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (64, 64)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[72.93, 72.93, 72.93],  # Fashion-MNIST's, as the backbones were pretrained
    std=[90.02, 90.02, 90.02],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='SSLResNet',
        depth=18,
        base_channels=16,
        stem='cifar',
        out_indices=(0, 1, 2, 3),
        frozen_stages=4,
        norm_cfg=norm_cfg,
        norm_eval=True),
    decode_head=dict(
        type='FCNHead',
        in_channels=128,
        in_index=3,
        channels=128,  # = in_channels, as num_convs=0 needs (the stage sets both)
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=11,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

dataset_type = 'BaseSegDataset'
data_root = 'data/mosaic/VOCdevkit/VOC2007'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# no loader processes: on 2 cores the model's own threads are busier without them
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/trainval.txt',
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/test.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])

optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = []
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
auto_scale_lr = dict(enable=False, base_batch_size=8)
