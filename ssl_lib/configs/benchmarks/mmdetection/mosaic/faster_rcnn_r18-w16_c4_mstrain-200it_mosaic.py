# The seed's VOC07+12 protocol (voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.py) scaled to the
# Fashion-MNIST mosaic on a CPU: the pipeline's ResNet-18 at base width 16 with the small-image stem
# (SSLResNet: layer1..3 at stride 4; layer4 + the extra norm as the RoI head), BN for one process.
# Objects of 8-38 px on 64 px canvases: anchors of 8-64 px, training at 48..80 px (the seed's
# 480..800 for a test size of 800), testing at 80 px; fewer proposals, anchors and RoIs; 200
# iterations of 2 images with the seed's schedule shape (warm-up, x0.1 at 18/24 and 22/24 of it).
# Measured on 200 / 100 mosaic images, one loaded core: 300 iterations from a MoCo backbone gave
# AP50 10.0 (4.0 with the seed's 512 RoIs and 256 anchors an image, at twice the time); a random-init
# backbone needed 450 for AP50 3.
_base_ = '../voc0712/faster_rcnn_r50_c4_mstrain_24k_voc0712.py'

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=8),
    backbone=dict(
        _delete_=True,
        type='SSLResNet',
        depth=18,
        base_channels=16,
        stem='cifar',
        num_stages=3,
        out_indices=(2, ),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[2, 4, 8, 16], strides=[4])),
    roi_head=dict(
        shared_head=dict(
            _delete_=True,
            type='SSLResLayerExtraNorm',
            depth=18,
            base_channels=16,
            norm_cfg=norm_cfg,
            norm_eval=False),
        # layer4 runs on every RoI: 8x8 (4x4 after its stride) rather than 14x14 keeps it cheap
        bbox_roi_extractor=dict(roi_layer=dict(output_size=8), out_channels=64, featmap_strides=[4]),
        bbox_head=dict(roi_feat_size=4, in_channels=128, num_classes=10)),
    # 1-4 objects a canvas: 64 anchors and 16 RoIs an image keep the positives a share like the seed's
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=16))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=50), rcnn=dict(max_per_img=20)))  # at most 4 objects a canvas

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(133, 48 + 8 * i) for i in range(5)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(133, 80), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='VOCDataset',
        data_root='data/mosaic/VOCdevkit/',
        ann_file='VOC2007/ImageSets/Main/trainval.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root='data/mosaic/VOCdevkit/', pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[150, 183], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
