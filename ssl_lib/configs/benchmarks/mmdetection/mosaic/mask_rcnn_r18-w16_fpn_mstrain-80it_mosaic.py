# The seed's COCO protocol (coco/mask_rcnn_r50_fpn_mstrain_1x_coco.py) scaled to the Fashion-MNIST
# mosaic on a CPU: the pipeline's ResNet-18 at base width 16 with the small-image stem (SSLResNet,
# layer1..4 at strides 1, 2, 4, 8) under a 32-channel FPN from layer2, BN for one process. Objects of
# 8-38 px on 64 px canvases: anchors of 8-128 px, RoIs assigned to levels as mmdet does, at these
# strides (finest_scale 28: the seed's 56 px at stride 4 is 14 cells), training at 64..80 px (the
# seed's 640..800 for a test size of 800), testing at 80 px; narrow heads, fewer proposals, anchors
# and RoIs; 80 iterations of 2 images with the seed's schedule shape (warm-up, x0.1 at 8/12 and
# 11/12 of it). An iteration costs about twice the C4 config's, hence fewer of them.
_base_ = '../coco/mask_rcnn_r50_fpn_mstrain_1x_coco.py'

norm_cfg = dict(type='BN', requires_grad=True)
channels = 32
model = dict(
    data_preprocessor=dict(pad_size_divisor=16),
    backbone=dict(
        _delete_=True,
        type='SSLResNet',
        depth=18,
        base_channels=16,
        stem='cifar',
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False),
    # from layer2 (stride 2) up, as the seed's FPN from layer1 at stride 4: a stride-1 level would cost
    # the most and serve no object size here
    neck=dict(in_channels=[16, 32, 64, 128], start_level=1, out_channels=channels, norm_cfg=norm_cfg),
    rpn_head=dict(
        in_channels=channels, feat_channels=channels, anchor_generator=dict(scales=[4], strides=[2, 4, 8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels, featmap_strides=[2, 4, 8, 16], finest_scale=28),
        bbox_head=dict(in_channels=channels, conv_out_channels=channels, fc_out_channels=128, num_classes=10,
                       norm_cfg=norm_cfg),
        mask_roi_extractor=dict(out_channels=channels, featmap_strides=[2, 4, 8, 16], finest_scale=28),
        mask_head=dict(in_channels=channels, conv_out_channels=channels, num_classes=10, norm_cfg=norm_cfg)),
    # 1-4 objects a canvas: 64 anchors and 16 RoIs an image keep the positives a share like the seed's
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=16))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=100), rcnn=dict(max_per_img=20)))  # at most 4 objects a canvas

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=[(133, 64 + 4 * i) for i in range(5)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(133, 80), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
data_root = 'data/mosaic/'  # the det/seg artifact of the mosaic: COCO JSONs over the VOC2007 images
images = dict(img='VOCdevkit/VOC2007/JPEGImages/')
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        ann_file='coco/annotations/instances_trainval.json',
        data_prefix=images,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='coco/annotations/instances_test.json',
        data_prefix=images,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'coco/annotations/instances_test.json')
test_evaluator = val_evaluator

max_iters = 80
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[53, 73], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
