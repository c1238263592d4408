# The seed's SimMIM fine-tuning recipe (Swin-B, ImageNet-1k at 224 px, 8 GPUs x 256 images): drop path
# 0.1, the global average of the last stage and a linear head, label smoothing 0.1, Mixup / CutMix;
# AdamW lr 5e-3 per 2048 images with layer-wise decay 0.9 over Swin's 24 blocks (SimMIM's layer ids),
# weight decay 0.05 but none on norms, biases, position and relative-position tables; 20 warm-up epochs,
# cosine to 2.5e-7 per 512 images; gradients clipped at norm 5; 100 epochs.
_base_ = './vit-base-p16_ft-8xb128-coslr-100e_in1k.py'
data = dict(samples_per_gpu=256)
model = dict(
    backbone=dict(drop_path_rate=0.1),
    head=dict(_delete_=True, type='SwinFinetuneHead', init_std=2e-5, label_smooth_val=0.1))
optimizer = dict(lr=5e-3 * 2048 / 512, model_type='swin', layer_decay=0.9)
optimizer_config = dict(grad_clip=dict(max_norm=5.0))
lr_config = dict(min_lr=2.5e-7 * 2048 / 512, warmup_iters=20, warmup_ratio=2.5e-7 / 1.25e-3)
runner = dict(max_epochs=100)
