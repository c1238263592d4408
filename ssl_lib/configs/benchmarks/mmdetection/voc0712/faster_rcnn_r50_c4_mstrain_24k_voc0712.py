# The seed's VOC07+12 detection benchmark, MoCo's protocol: Faster R-CNN R50-C4 with layer4 and an
# extra norm after it as the RoI head (MoCo's Res5ROIHeadsExtraNorm), SyncBN everywhere and nothing
# frozen, multi-scale training (shorter side 480..800 step 32, longer at most 1333), 24k iterations
# of 2 images x 8 GPUs, VOC2007 test at 800. Metrics: VOC2007's 11-point AP at IoU 0.5 (AP50) and
# its mean over IoU 0.50:0.05:0.95 (mAP), the two figures of the seed's table.
# The detection stage points both init_cfg checkpoints at extract's backbone.pth and the datasets
# at the artifact's VOCdevkit; as written here it trains from torchvision's supervised weights.
_base_ = [
    '../_base_/models/faster_rcnn_r50_c4.py',
    '../_base_/schedules/schedule_24k.py',
    '../_base_/default_runtime.py',
    '../_base_/datasets/voc0712.py',
]

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False),
    roi_head=dict(
        shared_head=dict(type='ResLayerExtraNorm', norm_cfg=norm_cfg, norm_eval=False),
        bbox_head=dict(num_classes=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, 480 + 32 * i) for i in range(11)], keep_ratio=True),
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
    dataset=dict(
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

val_evaluator = dict(iou_thrs=[round(0.5 + 0.05 * i, 2) for i in range(10)])
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2000))
log_processor = dict(by_epoch=False)
