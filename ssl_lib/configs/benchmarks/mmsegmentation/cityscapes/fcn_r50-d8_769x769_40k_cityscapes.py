# The seed's FCN R50-D8 on Cityscapes: 769 x 769 crops, 40k iterations, 4 GPUs x 2 images (SyncBN over 8),
# sliding-window inference (769 windows, stride 513). The stage trains in one process with the whole
# batch of `auto_scale_lr.base_batch_size` images, which is what SyncBN over 4 GPUs computes.
_base_ = [
    '../_base_/models/fcn_r50-d8.py', '../_base_/datasets/cityscapes_769x769.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_40k.py'
]
crop_size = (769, 769)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(align_corners=True),
    auxiliary_head=dict(align_corners=True),
    test_cfg=dict(mode='slide', crop_size=(769, 769), stride=(513, 513)))
auto_scale_lr = dict(enable=False, base_batch_size=8)
