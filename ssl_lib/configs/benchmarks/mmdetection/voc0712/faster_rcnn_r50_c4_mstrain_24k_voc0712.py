# The seed's VOC07+12 detection benchmark, MoCo's protocol: Faster R-CNN R50-C4 (layer4 as the RoI
# head, with an extra norm after it as in MoCo's Res5ROIHeadsExtraNorm), SyncBN everywhere and
# nothing frozen, multi-scale training (shorter side 480..800), 24k iterations of 2 images x 8 GPUs,
# test on VOC2007 test at 800. Metrics: VOC's 11-point AP (VOC2007 test's own rule) at IoU 0.5
# (AP50) and its mean over IoU 0.5:0.95 (mAP), the figures the seed's table reports.
# The detection stage points both init_cfg checkpoints at extract's backbone.pth and the datasets
# at the artifact's VOCdevkit; as written here it reproduces the seed's torchvision baseline.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    # torchvision's RGB statistics: the weights are trained that way, not caffe's BGR
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    roi_head=dict(
        shared_head=dict(
            type='ResLayerExtraNorm',
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        bbox_head=dict(num_classes=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, s) for s in range(480, 801, 32)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
data_root = 'data/VOCdevkit/'
train_dataloader = dict(
    batch_size=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                type='VOCDataset',
                data_root=data_root,
                ann_file=f'VOC{year}/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root=f'VOC{year}/'),
                filter_cfg=dict(filter_empty_gt=True, min_size=32),
                pipeline=train_pipeline) for year in (2007, 2012)
        ]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 24000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[18000, 22000], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))

val_evaluator = dict(
    type='VOCMetric', metric='mAP', eval_mode='11points', iou_thrs=[0.5 + 0.05 * i for i in range(10)])
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2000))
log_processor = dict(by_epoch=False)
# ResLayerExtraNorm (and the small configs' SSLResNet / SSLResLayerExtraNorm) join mmdet's registry
custom_imports = dict(imports=['ssl_lib.benchmarks.detection'], allow_failed_imports=False)
