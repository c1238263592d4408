# The seed's CAE fine-tuning recipe (`-rpe`): its BEiT-style ViT-B/16 recipe (the MAE one's augmentation,
# Mixup / CutMix, label smoothing 0.1, drop path 0.1, mean patch token through a fresh LayerNorm, layer-wise
# lr decay 0.65, 5 warm-up epochs then cosine to 1e-6, 100 epochs) at lr 1e-3 per 256 images, with BEiT's
# relative position bias in every block: q / v biases, one table per block over the 14 x 14 patch grid,
# zero at the start (the pre-trained model has none) and free of weight decay.
# The seed's fine-tuning ViT has no layer scale and drops the checkpoint's `gamma_1` / `gamma_2`; the
# fine-tuned backbone here is the extracted one, CAE's layer scales included (as the CAE authors' code).
_base_ = './vit-base-p16_ft-8xb128-coslr-100e_in1k.py'
model = dict(backbone=dict(use_rel_pos_bias=True))
optimizer = dict(lr=1e-3 * 1024 / 256)
