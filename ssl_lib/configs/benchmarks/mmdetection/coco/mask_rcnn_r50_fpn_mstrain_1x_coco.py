# The seed's COCO2017 detection and instance-segmentation benchmark: Mask R-CNN R50-FPN, SyncBN in
# the backbone, the FPN and the 4conv-1fc box head and the mask head, nothing frozen, multi-scale
# training (shorter side 640..800 step 32, longer at most 1333), 1x = 12 epochs of 2 images x 8 GPUs,
# val2017 at 800. Metrics: box and mask AP (mAP over IoU 0.50:0.95), AP50, AP75 (CocoMetric).
# The detection stage points the backbone's init_cfg at extract's backbone.pth and the datasets at
# the artifact's coco/; as written here it trains from torchvision's supervised weights.
_base_ = [
    '../_base_/models/mask_rcnn_r50_fpn.py',
    '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x.py',
    '../_base_/default_runtime.py',
]

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomChoiceResize', scales=[(1333, 640 + 32 * i) for i in range(6)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
