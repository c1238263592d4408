# Full fine-tuning of a ViT sized for two CPU cores (the finetune stage's default for a ViT backbone): the
# seed's MAE recipe (../imagenet/vit-base-p16_ft-8xb128-coslr-100e_in1k.py) on the default Fashion-MNIST,
# scaled down:
#   - 10 epochs (1 of warm-up) instead of 100 (5), batch 64, AdamW lr 1e-3 per 256 images (2x the seed's:
#     the short schedule), layer-wise decay 0.75 (MAE's for the shallower ViT-L; a 4-block ViT's patch
#     embedding still learns at 0.75^5 of the head's lr);
#   - no RandAugment / RandomErasing (28 px greyscale items); RandomResizedCrop scale (0.3, 1) to the
#     backbone's input size; Mixup / CutMix, label smoothing 0.1 and drop path 0.1 as the seed's.
# The test pipeline is the backbone's eval pipeline (backbone.json).
_base_ = '../imagenet/vit-base-p16_ft-8xb128-coslr-100e_in1k.py'
train_pipeline = None
test_pipeline = None
crop_scale = (0.3, 1.0)
data = dict(samples_per_gpu=64, workers_per_gpu=0)
optimizer = dict(lr=1e-3 * 64 / 256, layer_decay=0.75)
lr_config = dict(warmup_iters=1, warmup_ratio=1e-3)
runner = dict(max_epochs=10)
