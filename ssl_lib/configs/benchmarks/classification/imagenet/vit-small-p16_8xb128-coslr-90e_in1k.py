# The seed's linear evaluation of MoCo v3's ViT-Small/16 (8 GPUs x 128 images): the frozen ViT's CLS token
# (and, ours beside it, the mean of its patch tokens), BN without affine, a linear head; SGD lr 12, momentum
# 0.9, no weight decay, cosine over 90 epochs; RandomResizedCrop 224 + flip, test resize 256 + centre crop.
# A transformer backbone gets the token heads (ssl_lib/benchmarks/linear.py, TokenClsHeads) whatever the
# head type here says; the ResNet `ClsHead` form is kept for the seed's file layout.
_base_ = [
    '../_base_/datasets/imagenet.py',
]
model = dict(
    type='Classification',
    head=dict(type='ClsHead', with_avg_pool=True, num_classes=1000,
              norm_cfg=dict(type='BN', momentum=0.1, affine=False)))
data = dict(samples_per_gpu=128, recipe_gpus=8)
optimizer = dict(type='SGD', lr=12, momentum=0.9, weight_decay=0.)
lr_config = dict(policy='CosineAnnealing', min_lr=0.)
runner = dict(type='EpochBasedRunner', max_epochs=90)
evaluation = dict(interval=10, topk=(1, 5))
