# Full fine-tuning of a ViT sized for two CPU cores (the finetune stage's default for a ViT backbone): the
# seed's MAE recipe (../imagenet/vit-base-p16_ft-8xb128-coslr-100e_in1k.py) on the default Fashion-MNIST,
# scaled to 10 epochs of 10k images (1,560 steps against the seed's 125k):
#   - AdamW lr 2e-3 at batch 64 (8e-3 per 256 images: 16x the seed's, for the short schedule), layer-wise
#     decay 0.75 (MAE's for the shallower ViT-L; a 4-block ViT's patch embedding still learns at 0.75^5 of
#     the head's lr), 1 warm-up epoch, cosine;
#   - no Mixup / CutMix: at this length they cost 20 points (MAE's backbone, 3 epochs: 36.65 top-1 with
#     them, 56.55 without); label smoothing 0.1 and drop path 0.1 as the seed's;
#   - no RandAugment / RandomErasing (28 px greyscale items); RandomResizedCrop scale (0.3, 1) to the
#     backbone's input size. The test pipeline is the backbone's eval pipeline (backbone.json).
_base_ = '../imagenet/vit-base-p16_ft-8xb128-coslr-100e_in1k.py'
train_pipeline = None
test_pipeline = None
crop_scale = (0.3, 1.0)
data = dict(samples_per_gpu=64, workers_per_gpu=0)
train_cfg = dict(augments=[])
optimizer = dict(lr=2e-3, layer_decay=0.75)
lr_config = dict(warmup_iters=1, warmup_ratio=1e-3)
runner = dict(max_epochs=10)
