# The seed's MAE fine-tuning recipe (ViT-B/16, ImageNet-1k, 8 GPUs x 128 images): the backbone with drop
# path 0.1, the mean of the patch tokens through a fresh LayerNorm and a linear head (MAEFinetuneHead,
# truncated-normal init std 2e-5, label smoothing 0.1); Mixup (alpha 0.8) or CutMix (alpha 1.0), one of
# them on every batch; AdamW lr 5e-4 per 256 images with layer-wise decay 0.65 (the head at the full lr, the
# patch embedding at 0.65^13 of it), weight decay 0.05 but none on norms, biases, position embedding and
# tokens; 5 warm-up epochs then cosine by iteration to 1e-6; 100 epochs. The seed's augmentation:
# RandomResizedCrop 224 (bicubic) + flip + RandAugment (timm's rand-m9-mstd0.5-inc1; here torchvision's
# RandAugment(2 ops, magnitude 9)) + RandomErasing 0.25; test: resize 256 (bicubic), centre crop 224.
# CAE's recipe is `vit-base-p16_ft-8xb128-coslr-100e-rpe_in1k.py` (this one with relative position bias).
img_norm_cfg = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train_pipeline = [
    dict(type='RandomResizedCrop', size=224, interpolation=3),
    dict(type='RandomHorizontalFlip'),
    dict(type='RandAugment', num_ops=2, magnitude=9),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='RandomErasing', p=0.25, value='random'),
]
test_pipeline = [
    dict(type='Resize', size=256, interpolation=3),
    dict(type='CenterCrop', size=224),
    dict(type='ToTensor'),
    dict(type='Normalize', **img_norm_cfg),
]
data = dict(samples_per_gpu=128, workers_per_gpu=8)
model = dict(
    backbone=dict(drop_path_rate=0.1),
    head=dict(type='MAEFinetuneHead', pool='mean', fc_norm=True, init_std=2e-5, label_smooth_val=0.1))
train_cfg = dict(augments=[
    dict(type='BatchMixup', alpha=0.8, num_classes=1000, prob=0.5),
    dict(type='BatchCutMix', alpha=1.0, num_classes=1000, prob=0.5),
])
optimizer = dict(
    type='AdamW',
    lr=5e-4 * 1024 / 256,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    constructor='TransformerFinetuneConstructor',
    model_type='vit',
    layer_decay=0.65)
optimizer_config = dict()
lr_config = dict(
    policy='StepFixCosineAnnealing',
    min_lr=1e-6,
    warmup='linear',
    warmup_iters=5,
    warmup_ratio=1e-4,
    warmup_by_epoch=True,
    by_epoch=False)
runner = dict(max_epochs=100)
