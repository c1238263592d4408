# Full fine-tuning of a Swin sized for two CPU cores (the finetune stage's default for a Swin backbone):
# the seed's SimMIM recipe (../imagenet/swin-base_ft-8xb256-coslr-100e_in1k-224.py) scaled down as the ViT
# one beside this file: 10 epochs (1 of warm-up), batch 64, AdamW lr 2e-3, layer-wise decay 0.9 over the
# Swin's blocks, gradients clipped at 5, no Mixup / CutMix (see the ViT file), label smoothing 0.1, drop
# path 0.1.
_base_ = '../imagenet/swin-base_ft-8xb256-coslr-100e_in1k-224.py'
train_pipeline = None
test_pipeline = None
crop_scale = (0.3, 1.0)
data = dict(samples_per_gpu=64, workers_per_gpu=0)
train_cfg = dict(augments=[])
optimizer = dict(lr=2e-3)
lr_config = dict(min_lr=1e-6, warmup_iters=1, warmup_ratio=1e-3)
runner = dict(max_epochs=10)
