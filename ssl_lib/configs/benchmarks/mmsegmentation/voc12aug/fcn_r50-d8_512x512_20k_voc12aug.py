# The seed's FCN R50-D8 on VOC12 + aug: 512 x 512 crops, 20k iterations, 4 GPUs x 4 images (SyncBN over 16).
# The stage trains in one process with the whole batch of `auto_scale_lr.base_batch_size` images, which is
# what SyncBN over 4 GPUs computes.
_base_ = [
    '../_base_/models/fcn_r50-d8.py', '../_base_/datasets/pascal_voc12_aug.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_20k.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=21),
    auxiliary_head=dict(num_classes=21))
auto_scale_lr = dict(enable=False, base_batch_size=16)
